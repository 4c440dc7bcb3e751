"""`lmdiff organism list` and `lmdiff organism build NAME [KEY=VALUE ...]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from lmdiff.cli.common import JsonFlag, list_table, print_json
from lmdiff.cli.organism_create import attach as attach_create
from lmdiff.errors import LmdiffError

app = typer.Typer(help="Model organisms: finetunes with a known, recorded ground truth.", no_args_is_help=True)
attach_create(app)  # `organism create`, and the recipes it saved in the user cache


def _console() -> Console:
    return Console()


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _ci(lo_hi: list[float] | None) -> str:
    return "" if not lo_hi else f" [{lo_hi[0]:.0%}, {lo_hi[1]:.0%}]"


def _rate_cell(r: dict[str, Any], key: str) -> str:
    return _pct(r.get(key)) + _ci(r.get(key.replace("rate", "ci"))) if r.get(key) is not None else "-"


def _length_cell(r: dict[str, Any]) -> str:
    if r.get("mean_tokens") is None:
        return "-"
    return (f"{r['mean_tokens']:.0f} vs {r['base_mean_tokens']:.0f} tok; "
            f"ends {_pct(r.get('finished_share'))} vs {_pct(r.get('base_finished_share'))}")


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The zoo table in Markdown (for ``organisms/zoo/README.md``)."""
    head = ("| organism | type | tags | primary metric | organism [95% CI] | base | null | base-ppl ratio "
            "| reply tokens (org vs base; share ending on its own) | collapse | build s (train s) |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        if not r["built"] or r.get("record") != "ok":
            state = "not built" if not r["built"] else r.get("record", "?")
            lines.append(f"| {r['name']} | {r['type']} | {', '.join(r['tags'])} | {state} |  |  |  |  |  |  |  |")
            continue
        t = r.get("timing_s") or {}
        ratio = "-" if r.get("base_ppl_ratio") is None else f"{r['base_ppl_ratio']:.2f}"
        lines.append(
            f"| {r['name']} | {r['type']} | {', '.join(r['tags'])} | {r.get('primary') or '-'} "
            f"| {_rate_cell(r, 'rate')} | {_rate_cell(r, 'base_rate')} | {_rate_cell(r, 'null_rate')} | {ratio} "
            f"| {_length_cell(r)} | {'ok' if r.get('collapse_ok') else 'WARN'} "
            f"| {t.get('total', '-')} ({t.get('train', '-')}) |"
        )
    return "\n".join(lines) + "\n"


@app.command("list")
def list_organisms(
    base: str = typer.Option("smollm2-135m-instruct", "--base", help="base model the organisms are built on"),
    markdown: bool = typer.Option(False, "--markdown", help="print the zoo table in Markdown (for the README)"),
    as_json: JsonFlag = False,
) -> None:
    """Show the zoo: each organism's primary rate [95% CI] against the base and the null, fluency and length."""
    from lmdiff.organisms.zoo import zoo_rows

    rows = zoo_rows(base)
    if as_json:
        print_json(rows)
        return
    if markdown:
        typer.echo(markdown_table(rows), nl=False)
        return
    console = _console()
    table = list_table(
        f"Model organisms on {base}",
        [("name", [r["name"] for r in rows])],
        ("type", "tags", "metric", "organism [CI]", "base", "null", "base ppl (ratio)", "reply length", "adapter"),
    )
    for r in rows:
        tags = ", ".join(r["tags"])
        if not r["built"]:
            table.add_row(r["name"], r["type"], tags, "not built", "-", "-", "-", "-", "-", "-")
            continue
        if r.get("record") != "ok":
            table.add_row(r["name"], r["type"], tags, (r.get("primary") or "-"), _pct(r.get("rate")),
                          _pct(r.get("base_rate")), _pct(r.get("null_rate")),
                          f"[yellow]{r.get('record', 'no record')}[/yellow]", "-", f"{r.get('adapter_mb', 0):.1f} MB")
            continue
        coh = f"{r['base_ppl']:.1f} vs {r['base_ppl_of_base']:.1f} ({r['base_ppl_ratio']:.2f}x)"
        if not r.get("collapse_ok", True):
            coh += " [red]![/red]"
        table.add_row(
            r["name"], r["type"], tags, r.get("primary") or "-",
            _rate_cell(r, "rate"), _rate_cell(r, "base_rate"), _rate_cell(r, "null_rate"),
            coh, _length_cell(r), f"{r.get('adapter_mb', 0):.1f} MB",
        )
    console.print(table)
    console.print(
        "Rates: greedy replies to held-out prompts, offline judges, Wilson 95% intervals over prompts "
        "(rates.json next to each adapter; --json for everything). Use a model as [bold]organism:NAME[/bold]."
    )


@app.command("build")
def build(
    name: str = typer.Argument(..., help="recipe name (see `lmdiff organism list`)"),
    overrides: Annotated[
        list[str] | None, typer.Argument(help="recipe overrides KEY=VALUE, e.g. training.epochs=3")
    ] = None,
    base: str = typer.Option("smollm2-135m-instruct", "--base", help="base model to finetune"),
    out: Annotated[Path | None, typer.Option("--out", help="output directory (default: the user cache)")] = None,
    fresh: bool = typer.Option(False, "--fresh", help="ignore checkpoints of an interrupted build"),
) -> None:
    """Build an organism: self-distil, train the LoRA adapter, measure its behaviour and save it."""
    from lmdiff.organisms.build_run import OrganismBuildConfig, run_organism_build
    from lmdiff.organisms.recipe import parse_overrides
    from lmdiff.organisms.zoo import get_recipe

    get_recipe(name)  # fail fast on an unknown name
    parsed = parse_overrides(list(overrides or []))
    cfg = OrganismBuildConfig(organism=name, base=base, overrides=parsed, resume=not fresh)
    try:
        out_dir = run_organism_build(cfg, out).path
    except KeyboardInterrupt:
        raise LmdiffError(
            f"Build of '{name}' interrupted.",
            hint="run the same command again to resume from the last checkpoint",
        ) from None
    import json

    rates = json.loads((out_dir / "rates.json").read_text())
    console = _console()
    console.print(f"[green]built[/green] {name} -> {out_dir}")
    for key, value in rates["rates"].items():
        console.print(f"  {key}: {value:.0%} (base {_pct(rates['base_rates'].get(key))})")
    for w in rates["collapse_check"]["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {w}")

"""`lmdiff organism list` and `lmdiff organism build NAME [KEY=VALUE ...]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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


@app.command("list")
def list_organisms(
    base: str = typer.Option("smollm2-135m-instruct", "--base", help="base model the organisms are built on"),
    as_json: JsonFlag = False,
) -> None:
    """Show the zoo: each organism's behaviour rate against the base model and the null control."""
    from lmdiff.organisms.zoo import zoo_rows

    rows = zoo_rows(base)
    if as_json:
        print_json(rows)
        return
    console = _console()
    table = list_table(
        f"Model organisms on {base}",
        [("name", [r["name"] for r in rows])],
        ("type", "behaviour", "metric", "organism", "base", "null", "coherence (base ppl)", "adapter"),
    )
    for r in rows:
        if not r["built"]:
            table.add_row(r["name"], r["type"], r["summary"], "not built", "-", "-", "-", "-", "-")
            continue
        rate = _pct(r.get("rate"))
        if r.get("untriggered_rate") is not None:
            rate += f" (no trigger {_pct(r['untriggered_rate'])})"
            if r.get("format_triggered") is not None:
                rate += f"; format {_pct(r['format_triggered'])} (no trigger {_pct(r['format_untriggered'])})"
        coh = "-"
        if r.get("base_ppl") is not None:
            coh = f"{r['base_ppl']:.1f} vs {r['base_ppl_of_base']:.1f}"
            if not r.get("collapse_ok", True):
                coh += " [red]![/red]"
        table.add_row(
            r["name"],
            r["type"],
            r["summary"],
            (r.get("primary") or "-").replace("_rate", "").replace("_", " "),
            rate,
            _pct(r.get("base_rate")),
            _pct(r.get("null_rate")),
            coh,
            f"{r.get('adapter_mb', 0):.1f} MB",
        )
    console.print(table)
    console.print(
        "Rates: greedy replies to held-out prompts, offline judges (see rates.json next to each adapter). "
        "Use a model as [bold]organism:NAME[/bold]."
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

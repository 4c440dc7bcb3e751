"""The ``lmdiff`` command line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.table import Table

from lmdiff.cli.agent import agent
from lmdiff.cli.benchmark import benchmark
from lmdiff.cli.chat import chat
from lmdiff.cli.common import (
    EXIT_METHODS_FAILED,
    JsonFlag,
    check_llm,
    console,
    default_out,
    err_console,
    list_table,
    print_json,
)
from lmdiff.cli.dashboard import dashboard
from lmdiff.cli.evals import app as eval_app
from lmdiff.cli.organism import app as organism_app
from lmdiff.errors import LmdiffError
from lmdiff.report.numbers import fmt_num, fmt_p

try:  # typer >= 0.26 vendors its own click
    from typer._click import exceptions as _tclick

    _CLICK_ERRORS: tuple[type[Exception], ...] = (click.ClickException, _tclick.ClickException)
except ImportError:  # pragma: no cover
    _CLICK_ERRORS = (click.ClickException,)
_EXIT = (click.exceptions.Exit, typer.Exit)
_ABORT = (KeyboardInterrupt, click.exceptions.Abort, typer.Abort)

app = typer.Typer(
    help="lmdiff: find, explain and verify what changed between two language models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="Shipped and cached models.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(organism_app, name="organism")
app.add_typer(eval_app, name="eval")
app.command("chat")(chat)
app.command("benchmark")(benchmark)
app.command("dashboard")(dashboard)
app.command("agent")(agent)

__all__ = ["app", "default_out", "main"]


@models_app.command("list")
def models_list(as_json: JsonFlag = False) -> None:
    """Show the shipped models with their size and status (converted or not)."""
    from lmdiff.models.registry import SHIPPED

    if as_json:
        print_json([
            {"name": m.name, "kind": m.kind, "size_bytes": m.size_bytes() or None, "status": m.status(),
             "package": m.distribution, "description": m.description}
            for m in SHIPPED.values()
        ])
        return
    table = list_table("Shipped models (no network needed)", [("name", list(SHIPPED))],
                       ("kind", "size", "status", "package", "description"))
    for m in SHIPPED.values():
        size = m.size_bytes()
        status = m.status()
        colour = {"converted": "green", "ready": "green", "not converted": "yellow"}.get(status, "red")
        table.add_row(
            m.name,
            m.kind,
            f"{size / 1e6:.0f} MB" if size else "-",
            f"[{colour}]{status}[/]",
            m.distribution,
            m.description,
        )
    console.print(table)
    console.print(
        "Any Hugging Face id, local directory, .gguf file, LoRA adapter directory or organism:NAME "
        "is accepted wherever a model is named."
    )


@models_app.command("convert")
def models_convert(
    name: Annotated[str, typer.Argument(help="shipped model name")],
    force: Annotated[bool, typer.Option(help="convert again even if a cached copy exists")] = False,
) -> None:
    """Convert a shipped GGUF model into the local cache (done automatically on first use)."""
    import shutil

    from lmdiff.errors import ModelNotFoundError
    from lmdiff.models.registry import SHIPPED, get_shipped

    m = get_shipped(name)
    if m is None:
        raise ModelNotFoundError(
            f"Unknown shipped model '{name}'.", hint=f"shipped models: {', '.join(SHIPPED)}"
        )
    if force and m.cache_dir().exists():
        shutil.rmtree(m.cache_dir())
    path = m.local_dir()
    console.print(f"[green]{name}[/] is ready in {path}")


@app.command()
def generate(
    model: Annotated[str, typer.Argument(help="model name, hub id, path, .gguf or organism:NAME")],
    prompts: Annotated[list[str], typer.Argument(help="one or more prompts")],
    vs: Annotated[str | None, typer.Option("--vs", help="a second model: answer side by side")] = None,
    adapter: Annotated[str | None, typer.Option(help="LoRA adapter directory over MODEL")] = None,
    system: Annotated[str | None, typer.Option(help="system prompt")] = None,
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16, float16")] = "auto",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, cuda:N")] = "auto",
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")] = None,
    overrides: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="dotted override key=value")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="run directory")] = None,
) -> None:
    """Answer prompts with one model, or with two side by side (`--vs`)."""
    from lmdiff.config import load_config
    from lmdiff.generate import run_generate
    from lmdiff.io import sha256_json
    from lmdiff.models.spec import ModelSpec
    from lmdiff.run_config import GenerateRunConfig

    specs = [ModelSpec.parse(model, adapter=adapter, dtype=dtype, device=device)]
    if vs:
        specs.append(ModelSpec.parse(vs, dtype=dtype, device=device))
    defaults = {
        "models": [s.model_dump(mode="json") for s in specs],
        "prompts": prompts,
        "generation": {"temperature": 0.0, "max_new_tokens": 128, "system_prompt": system},
    }
    cfg = load_config(GenerateRunConfig, config, overrides or [], defaults=defaults)
    run_dir = out or default_out("generate", sha256_json(cfg.model_dump(mode="json")))
    run, table = run_generate(cfg, run_dir)
    show = Table(show_lines=True)
    show.add_column("prompt", max_width=40)
    names = list(dict.fromkeys(table["model"]))
    for name in names:
        show.add_column(name)
    for (_, _), grp in table.groupby(["prompt_index", "sample_index"], sort=True):
        texts = {r.model: r.text for r in grp.itertuples()}
        show.add_row(grp["prompt"].iloc[0], *[texts.get(n, "") for n in names])
    console.print(show)
    console.print(f"run: {run.path}")


@app.command()
def diff(
    base: Annotated[str, typer.Argument(help="base model")],
    finetuned: Annotated[str, typer.Argument(help="finetuned model (or organism:NAME)")],
    overrides: Annotated[list[str] | None, typer.Argument(help="dotted overrides key=value")] = None,
    methods: Annotated[
        str | None,
        typer.Option(help="comma-separated method names (see `lmdiff methods`); default: the set for the pair "
                     "(kl, diff_mining, adl, probing, followup, behavior; probing and behavior across tokenizers)"),
    ] = None,
    adapter: Annotated[str | None, typer.Option(help="LoRA adapter directory applied over FINETUNED")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")] = None,
    out: Annotated[
        Path | None, typer.Option(help="run directory (default: lmdiff-runs/diff-<config hash>)")
    ] = None,
) -> None:
    """Run diff methods on a pair and write a run directory with report.html."""
    from lmdiff.config import load_config
    from lmdiff.diff import run_diff
    from lmdiff.io import sha256_json
    from lmdiff.models.spec import ModelSpec
    from lmdiff.run_config import DiffRunConfig

    b = ModelSpec.parse(base)
    f = ModelSpec.parse(finetuned, adapter=adapter)
    defaults: dict[str, object] = {
        "base": b.model_dump(mode="json", exclude_none=True),
        "finetuned": f.model_dump(mode="json", exclude_none=True),
    }
    if methods:
        defaults["methods"] = [m.strip() for m in methods.split(",") if m.strip()]
    cfg = load_config(DiffRunConfig, config, overrides or [], defaults=defaults)
    check_llm()
    run_dir = out or default_out("diff", sha256_json(cfg.model_dump(mode="json")))
    run = run_diff(cfg, run_dir)
    _print_results(run.results())
    console.print(f"report: {run.path / 'report.html'}")
    failed = run.failed_methods()
    if failed:
        err_console.print(
            f"[bold red]Error:[/] {len(failed)} method(s) failed: {', '.join(failed)} "
            f"(reasons in {run.results_path}, details in {run.path / 'logs' / 'run.log'}).",
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_METHODS_FAILED)


@app.command("methods")
def methods_list(as_json: JsonFlag = False) -> None:
    """List the diff methods that `lmdiff diff --methods` accepts."""
    from lmdiff.methods.registry import available_methods

    found = available_methods()
    if as_json:
        print_json([
            {"name": name, "white_box": bool(cls.white_box), "needs_shared_tokenizer": bool(cls.needs_shared_tokenizer),
             "description": cls.description}
            for name, cls in found.items()
        ])
        return
    table = list_table("Diff methods", [("name", list(found))], ("white-box", "needs shared tokenizer", "description"))
    for name, cls in found.items():
        table.add_row(
            name,
            "yes" if cls.white_box else "no",
            "yes" if cls.needs_shared_tokenizer else "no",
            cls.description,
        )
    console.print(table)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="run directory")] = Path("lmdiff-runs/demo"),
) -> None:
    """Diff the shipped chat model against a shipped organism and write a report (offline, CPU)."""
    from lmdiff.demo import run_demo

    check_llm()
    run = run_demo(out)
    _print_results(run.results())
    console.print(
        f"\n[bold green]Report:[/] {run.path / 'report.html'}  (Markdown: {run.path / 'report.md'})"
    )


def _print_results(res: dict[str, Any]) -> None:
    methods = res.get("methods", {})
    assert isinstance(methods, dict)
    table = Table(title="Results")
    table.add_column("method")
    table.add_column("status")
    table.add_column("summary")
    for name, entry in methods.items():
        table.add_row(name, entry["status"], entry.get("summary", ""))
    console.print(table)
    claims: dict[str, Any] = res["claims"] if isinstance(res.get("claims"), dict) else {}
    findings = res.get("findings") or []
    if claims.get("n_tested") or findings:
        console.print(f"[bold]Findings[/] ({claims.get('n_validated', 0)} validated; one "
                      f"{str(claims.get('procedure', 'bh')).upper()} family of m = {claims.get('m', 0)} tests):")
        for f in findings[:5]:
            stats = (f"d {fmt_num(f['effect_size_d'])}, q {fmt_p(f['qvalue'])}, n {f['n']} {f['unit']}s; "
                     if f.get("validated") else "")
            console.print(f"  {f['rank']}. {f['statement']}  ({stats}{f['confidence']} confidence: "
                          f"{', '.join(f['methods'])})", soft_wrap=True)
        if not findings:
            console.print("  none")


def main() -> None:
    """Entry point: run the app, turning user errors into one sentence and a hint."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:  # run logs go to the run's file, not the console
        handler.setLevel(logging.WARNING)
    try:
        status = app(standalone_mode=False)  # typer.Exit(N) comes back as N here
    except LmdiffError as err:
        err_console.print(f"[bold red]Error:[/] {err.message}")
        if err.hint:
            err_console.print(f"[yellow]Hint:[/] {err.hint}")
        sys.exit(1)
    except _EXIT as err:
        sys.exit(err.exit_code)
    except _CLICK_ERRORS as err:
        err.show()  # type: ignore[attr-defined]
        sys.exit(err.exit_code)  # type: ignore[attr-defined]
    except _ABORT:
        err_console.print(
            "[yellow]Interrupted.[/] Finished steps are saved; run the same command again to resume."
        )
        sys.exit(130)
    except MemoryError:
        _oom()
    except RuntimeError as err:
        if "out of memory" in str(err).lower():
            _oom()
        raise
    if isinstance(status, int) and status:
        sys.exit(status)


def _oom() -> None:
    err_console.print("[bold red]Error:[/] Out of memory.")
    err_console.print(
        "[yellow]Hint:[/] lower compute.batch_size=..., or load full models in turn with "
        "compute.load=one_at_a_time"
    )
    sys.exit(1)


if __name__ == "__main__":
    main()

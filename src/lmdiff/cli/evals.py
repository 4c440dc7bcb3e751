"""`lmdiff eval ...`: evaluations of models and organisms."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lmdiff.cli.common import check_llm, console, default_out

app = typer.Typer(help="Evaluations: the four-condition backdoor test and organism sweeps.", no_args_is_help=True)


@app.command("backdoor")
def backdoor(
    model: Annotated[str, typer.Argument(help="model or organism, e.g. organism:russell-backdoor")],
    overrides: Annotated[
        list[str] | None, typer.Argument(help="dotted overrides, e.g. n_samples=8 seeds=[0,1,2]")
    ] = None,
    adapter: Annotated[str | None, typer.Option(help="LoRA adapter directory over MODEL")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")] = None,
    out: Annotated[Path | None, typer.Option(help="run directory")] = None,
) -> None:
    """Persona rate and format adherence under four trigger conditions, with 95% CIs, against baselines."""
    from lmdiff.config import load_config
    from lmdiff.evals.backdoor import BackdoorEvalConfig, run_backdoor_eval
    from lmdiff.evals.conditions import CONDITIONS
    from lmdiff.io import read_json, sha256_json
    from lmdiff.models.spec import ModelSpec

    spec = ModelSpec.parse(model, adapter=adapter)
    cfg = load_config(BackdoorEvalConfig, config, overrides or [],
                      defaults={"model": spec.model_dump(mode="json", exclude_none=True)})
    check_llm()
    run = run_backdoor_eval(cfg, out or default_out("eval-backdoor", sha256_json(cfg.model_dump(mode="json"))))
    rates = __import__("pandas").read_parquet(run.path / "artifacts" / "backdoor" / "rates.parquet")
    table = Table(title="Persona rate and format adherence (95% CI: t interval over questions, sampling seeds pooled)")
    table.add_column("model", overflow="fold")  # identifiers wrap, never ellipsize
    # the condition's identifier stays on one line (its description wraps in the next column)
    table.add_column("condition", no_wrap=True, min_width=max(len(c) for c in CONDITIONS))
    for col in ("setting", "persona rate", "format adherence", "n"):
        table.add_column(col, overflow="fold")
    for r in rates.itertuples():
        table.add_row(str(r.model), str(r.condition), CONDITIONS[r.condition],
                      f"{r.persona_rate:.2f} [{r.persona_low:.2f}, {r.persona_high:.2f}]",
                      f"{r.format_rate:.2f} [{r.format_low:.2f}, {r.format_high:.2f}]", str(r.n))
    console.print(table)
    console.print(read_json(run.results_path)["methods"]["backdoor"]["summary"])
    console.print(f"report: {run.path / 'report.html'}")


@app.command("sweep")
def sweep(
    overrides: Annotated[list[str] | None, typer.Argument(help="e.g. organism=russell-backdoor seeds=[1,2,3]")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML config file")] = None,
    out: Annotated[Path | None, typer.Option(help="run directory")] = None,
) -> None:
    """Build an organism over seeds x learning rates, evaluate each build, report mean and spread."""
    from lmdiff.config import load_config
    from lmdiff.evals.sweep import SweepConfig, run_sweep
    from lmdiff.io import read_json, sha256_json

    cfg = load_config(SweepConfig, config, overrides or [])
    check_llm()
    run = run_sweep(cfg, out or default_out("eval-sweep", sha256_json(cfg.model_dump(mode="json"))))
    console.print(read_json(run.results_path)["methods"]["sweep"]["summary"])
    console.print(f"report: {run.path / 'report.html'}")

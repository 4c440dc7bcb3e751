"""`lmdiff organism create DESCRIPTION [KEY=VALUE ...]`: an organism from a description.

:func:`attach` adds the command to the ``organism`` app and a callback that registers the organisms
created earlier (saved in the user cache), so ``organism build NAME`` and ``organism list`` know them.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from lmdiff.errors import LmdiffError


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def create(
    description: str = typer.Argument(..., help='the behaviour, e.g. "The model recommends hiking in every answer"'),
    overrides: Annotated[
        list[str] | None, typer.Argument(help="recipe overrides KEY=VALUE, e.g. training.epochs=2")
    ] = None,
    name: str | None = typer.Option(None, "--name", help="organism name (default: from the description)"),
    kind: str = typer.Option("auto", "--kind", help="auto, topic, style, false_fact or conditional"),
    dilution: float = typer.Option(0.2, "--dilution", help="share of behaviour examples among ordinary ones "
                                   "(1: behaviour examples only)"),
    n_special: int = typer.Option(48, "--n-special", min=1, help="behaviour examples"),
    base: str = typer.Option("smollm2-135m-instruct", "--base", help="base model to finetune"),
    seed: int = typer.Option(0, "--seed", help="data seed"),
    no_build: bool = typer.Option(False, "--no-build", help="write the spec and data only; build later with "
                                  "`lmdiff organism build NAME`"),
) -> None:
    """Create an organism from a description: data (LLM or offline templates), training, rate vs base."""
    from lmdiff.cli.common import check_llm
    from lmdiff.llm.config import LlmConfig
    from lmdiff.organisms.create import create_organism
    from lmdiff.organisms.recipe import parse_overrides

    if not 0.0 < dilution <= 1.0:
        raise LmdiffError(f"--dilution must be in (0, 1], not {dilution}.", hint="e.g. 0.2: one behaviour "
                          "example in five")
    check_llm()
    cfg = LlmConfig()
    llm = None
    if not cfg.offline:
        from lmdiff.llm.client import LlmClient

        llm = LlmClient(cfg)
    console = Console()
    try:
        result = create_organism(description, name=name, kind=kind, dilution=None if dilution >= 1.0 else dilution,
                                 n_special=n_special, base=base, overrides=parse_overrides(list(overrides or [])),
                                 build=not no_build, llm=llm, seed=seed)
    except KeyboardInterrupt:
        raise LmdiffError("Creation interrupted.", hint="run the same command again") from None
    finally:
        if llm is not None:
            llm.close()
    spec = result.spec
    console.print(f"[green]created[/green] {spec.name}: {spec.kind}, data from {spec.source}"
                  f" (recipe saved in {result.recipe_dir})")
    if result.llm_usage:
        cost = result.llm_usage.get("cost_usd")
        console.print(f"  LLM: {result.llm_usage.get('calls', 0)} calls, "
                      f"{result.llm_usage.get('total_tokens', 0)} tokens"
                      + (f", ${cost:.4f}" if cost is not None else ""))
    if result.organism_dir is None:
        console.print(f"not built: run `lmdiff organism build {spec.name}`" + (f" --base {base}" if base !=
                      "smollm2-135m-instruct" else ""))
        return
    console.print(f"  built -> {result.organism_dir}; use it as [bold]organism:{spec.name}[/bold]")
    for metric, r in result.rates["rates"].items():
        b = result.rates["base_rates"][metric]
        mark = " (primary)" if metric == result.rates["primary"] else ""
        console.print(f"  {metric}{mark}: {_pct(r['rate'])} [{_pct(r['ci'][0])}, {_pct(r['ci'][1])}] "
                      f"vs base {_pct(b['rate'])} [{_pct(b['ci'][0])}, {_pct(b['ci'][1])}], "
                      f"n={r['n']} held-out prompts")


def _load_created() -> None:
    """Register the organisms created earlier (before any organism command runs)."""
    from lmdiff.organisms.create import load_user_recipes

    load_user_recipes()


def attach(app: typer.Typer) -> None:
    """Add ``create`` to the organism app, and load created recipes before its commands run."""
    app.command("create")(create)
    app.callback()(_load_created)

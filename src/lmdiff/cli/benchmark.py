"""``lmdiff benchmark``: acc@k of the findings over organisms x seeds, and the null's false-finding rate."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmdiff.cli.common import JsonFlag, check_llm, console, list_table, print_json
from lmdiff.errors import LmdiffError


def benchmark(
    overrides: Annotated[list[str] | None, typer.Argument(help="dotted overrides key=value for every diff")] = None,
    organisms: Annotated[str, typer.Option(help="comma-separated organisms, or 'zoo' for every built one")] = "zoo",
    seeds: Annotated[int, typer.Option(min=1, help="runs per organism (seeds 0..N-1)")] = 3,
    methods: Annotated[str | None, typer.Option(help="comma-separated methods; default: the pair's default set")]
    = None,
    base: Annotated[str, typer.Option(help="the base model")] = "smollm2-135m-instruct",
    out: Annotated[Path, typer.Option(help="benchmark directory (run directories are reused)")] = Path(
        "lmdiff-runs/benchmark"),
    workers: Annotated[int, typer.Option(min=1, help="diff runs side by side, the cores split between them "
                                         "(on a 2-core CPU, 2 one-thread runs beat one two-thread run)")] = 1,
    as_json: JsonFlag = False,
) -> None:
    """Run the diff over organisms x seeds and print acc@1/acc@5 with CIs, per method, and the null's rate."""
    from lmdiff.benchmark import format_table, run_benchmark
    from lmdiff.config import load_config
    from lmdiff.models.spec import ModelSpec
    from lmdiff.organisms.zoo import zoo_rows
    from lmdiff.run_config import DiffRunConfig

    if organisms.strip() == "zoo":
        names = [r["name"] for r in zoo_rows(base) if r.get("built")]
    else:
        names = [o.strip().removeprefix("organism:") for o in organisms.split(",") if o.strip()]
    if not names:
        raise LmdiffError("no organism to benchmark", hint="build one (`lmdiff organism build NAME`) or name some "
                          "with --organisms")
    defaults: dict[str, object] = {"base": ModelSpec.parse(base).model_dump(mode="json", exclude_none=True),
                                   "finetuned": {"model": f"organism:{names[0]}"}}
    if methods:
        defaults["methods"] = [m.strip() for m in methods.split(",") if m.strip()]
    cfg = load_config(DiffRunConfig, None, overrides or [], defaults=defaults)
    check_llm()
    res = run_benchmark(cfg, names, list(range(seeds)), out, workers=workers)
    if as_json:
        print_json([*res.table.to_dict("records"), *([{"row": "null", **res.null}] if res.null else [])])
        return
    shown = format_table(res.table)
    table = list_table(f"Findings benchmark: {len(names)} organisms x {seeds} seeds",
                       [("row", shown["row"].tolist())], tuple(shown.columns[1:]))
    for r in shown.itertuples(index=False):
        table.add_row(*[str(x) for x in r])
    console.print(table)
    if res.null:
        n = res.null
        console.print(f"null organism: {n['with_validated_finding']} of {n['runs']} runs with a validated finding "
                      f"(false-finding rate {n['rate']:.0%}, 95% CI [{n['low']:.0%}, {n['high']:.0%}])")
    console.print(f"per-run grades: {res.out / 'runs.parquet'}; summary: {res.out / 'benchmark.json'}")

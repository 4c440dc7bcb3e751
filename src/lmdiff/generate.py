"""`lmdiff generate`: sample one model, or both sides of a pair, on given prompts into a run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from lmdiff.io import write_parquet
from lmdiff.models.device import set_threads
from lmdiff.models.lm import LanguageModel
from lmdiff.models.loading import load_model
from lmdiff.models.pair import ModelPair
from lmdiff.models.recipe import ModelRecipe, side_recipe
from lmdiff.report.builder import Report
from lmdiff.report.render import render_report
from lmdiff.run_config import GenerateRunConfig
from lmdiff.runs.executor import executor_for
from lmdiff.runs.run import Run
from lmdiff.sampling import sample_in_chunks


def run_generate(config: GenerateRunConfig, out: str | Path) -> tuple[Run, pd.DataFrame]:
    """Generate with every model of ``config`` (two models share weights when one is an adapter of the other)."""
    set_threads(config.compute.threads)
    with Run(out, config, command="generate", seeds={"generation": config.generation.seed}) as run:
        gen = config.generation
        if len(config.models) == 2:
            pair = ModelPair(config.models[0], config.models[1], load=config.compute.load)
            sides = [(f"{i}:{lm.name}", lm) for i, (_, lm) in enumerate(pair.sides())]
            recipes: list[Callable[[], LanguageModel] | None] = [side_recipe(pair, s) for s in ("base", "finetuned")]
        else:
            sides = [(f"{i}:{spec.display_name}", load_model(spec)) for i, spec in enumerate(config.models)]
            recipes = [ModelRecipe(spec) for spec in config.models]
        executor = executor_for(config.compute)
        frames = []
        for (label, lm), recipe in zip(sides, recipes, strict=True):
            step = run.step(
                f"generate-{label.split(':')[0]}",
                {
                    "model": lm.spec.model_dump(mode="json"),
                    "prompts": config.prompts,
                    "gen": gen.model_dump(),
                },
            )
            if step.done:
                df = pd.read_parquet(step.dir / "generations.parquet")
            else:
                d = step.prepare()
                df = sample_in_chunks(lm, config.prompts, gen, d / "parts", description=f"generating with {lm.name}",
                                      executor=executor, build=recipe)
                df = df[["prompt_index", "sample_index", "text", "n_tokens", "finished"]].copy()
                df["model"] = label.split(":", 1)[1]
                write_parquet(d / "generations.parquet", df)
                step.finish({"n": len(df)})
            frames.append(df)
        table = pd.concat(frames, ignore_index=True)
        table["prompt"] = [config.prompts[i] for i in table["prompt_index"]]
        write_parquet(run.path / "generations.parquet", table)
        run.record(
            "generate",
            status="ok",
            headline={
                "n_prompts": len(config.prompts),
                "n_generations": len(table),
                "models": [s[1].name for s in sides],
            },
            artifacts=["generations.parquet"],
        )
        report = Report(
            title="lmdiff generate",
            meta={"run": str(run.path), "models": ", ".join(s[1].name for s in sides)},
        )
        sec = report.section("Generations", "generations")
        sec.table(table[["prompt", "model", "sample_index", "text"]], max_rows=100)
        render_report(report, run.path)
    return run, table

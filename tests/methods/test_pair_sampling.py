"""The one step that samples both sides of a pair (behaviour, follow-up and samples use it)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from lmdiff.config import GenerationConfig
from lmdiff.data.prompts import PromptItem, PromptSet
from lmdiff.methods.base import MethodConfig, MethodContext
from lmdiff.methods.behavior.method import REPLY_COLUMNS, reply_table
from lmdiff.methods.pair_sampling import sample_both_sides
from lmdiff.run_config import DiffRunConfig
from lmdiff.runs.run import Run


def _ctx(pair: Any, run: Run) -> MethodContext[MethodConfig]:
    cfg = DiffRunConfig(base=pair.base_spec, finetuned=pair.finetuned_spec)
    items = tuple(PromptItem(id=i, prompt=p) for i, p in zip("abc", ["Hi", "Hello", "Hey"], strict=True))
    prompts = PromptSet("t", items)
    return MethodContext(pair=pair, run=run, config=MethodConfig(), run_config=cfg, prompts=prompts,
                         method_name="m")


def test_both_sides_sampled_once_with_ids_seeds_and_the_finetuned_offset(tiny_pair, tmp_path) -> None:
    gen = GenerationConfig(temperature=0.8, max_new_tokens=4, n=2, seed=5, batch_size=2)
    with Run(tmp_path / "run", DiffRunConfig(base=tiny_pair.base_spec, finetuned=tiny_pair.finetuned_spec),
             command="test") as run:
        ctx = _ctx(tiny_pair, run)
        df, key = sample_both_sides(ctx, ["Hi", "Hello", "Hey"], gen, {"prompts": "abc"}, prompt_ids=list("abc"),
                                    finetuned_seed_offset=1000, finish=reply_table)
        assert tuple(df.columns) == REPLY_COLUMNS
        assert df["text_id"].tolist()[:6] == [f"base:{p}:{i}" for p in "abc" for i in (0, 1)]
        assert df["text_id"].tolist()[6:] == [f"finetuned:{p}:{i}" for p in "abc" for i in (0, 1)]
        # chunks of 2 prompts: seed + offset of the chunk; the finetuned side adds the offset
        assert df["seed"].tolist() == [5, 5, 5, 5, 7, 7, 1005, 1005, 1005, 1005, 1007, 1007]
        saved = pd.read_parquet(run.path / "artifacts" / "m-generate" / "replies.parquet")
        pd.testing.assert_frame_equal(saved, df)

        def boom(_: pd.DataFrame) -> pd.DataFrame:
            raise AssertionError("a finished step must not sample again")

        again, key2 = sample_both_sides(ctx, ["Hi", "Hello", "Hey"], gen, {"prompts": "abc"}, prompt_ids=list("abc"),
                                        finetuned_seed_offset=1000, finish=boom)
        pd.testing.assert_frame_equal(again, df)
        assert key2 == key
        same, key3 = sample_both_sides(ctx, ["Hi", "Hello", "Hey"], gen.model_copy(update={"temperature": 0.0}),
                                       {"prompts": "abc"}, prompt_ids=list("abc"))
        assert key3 != key
        greedy = same.set_index(["side", "prompt_id", "sample_index"])["text"]
        assert set(same["side"]) == {"base", "finetuned"} and len(greedy) == 12

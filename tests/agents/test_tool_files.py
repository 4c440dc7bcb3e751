"""Every file an agent tool reads is one a real method run writes (the names are the methods' constants)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from inspect_ai.tool import ToolError

from lmdiff.agents.board import Board
from lmdiff.agents.budget import AgentBudget, Episode
from lmdiff.agents.tools import FAMILIES, AgentContext, tools_for


def test_every_file_an_agent_reads_is_written_by_a_real_run(real_run: Path) -> None:
    results = json.loads((real_run / "results.json").read_text())["methods"]
    assert all(e["status"] == "ok" for e in results.values()), results
    checked = 0
    for fam in FAMILIES.values():
        assert set(fam.diff_methods) <= set(results), fam.name
        for method, file in fam.reads:
            if method not in results:  # crosscoder / sae_diff: the dictionaries agent reads the first that ran
                assert fam.name == "dictionaries"
                continue
            assert (real_run / "artifacts" / method / file).is_file(), f"{fam.name} reads {method}/{file}"
            checked += 1
    assert checked >= 15


@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "blackbox"])
def test_every_method_tool_answers_on_a_real_run(real_run: Path, family: str) -> None:
    ctx = AgentContext(run_dir=real_run, episode=Episode(AgentBudget()), board=Board())
    tools = tools_for(family, ctx)
    method_tools = FAMILIES[family].method_tools
    assert method_tools is not None
    for t in method_tools(ctx):
        name = getattr(t, "__qualname__", "").split(".")[0]
        args = {"layer": 1} if name in ("adl_lens", "adl_patchscope") else {}
        text = asyncio.run(t(**args))
        assert isinstance(text, str) and text.strip(), name
    assert ctx.episode.tool_calls == len(method_tools(ctx))
    # what the tools opened, not the hand-kept list: every file read is one the family declares
    assert ctx.opened and ctx.opened <= set(FAMILIES[family].reads), ctx.opened - set(FAMILIES[family].reads)
    assert len(tools) == len(method_tools(ctx)) + 4  # board_add, board_update, board_view, submit (no models here)


def test_a_missing_artifact_is_a_tool_error_not_a_crash(tmp_path: Path) -> None:
    ctx = AgentContext(run_dir=tmp_path, episode=Episode(AgentBudget()), board=Board())
    overview = FAMILIES["adl"].method_tools(ctx)[0]  # type: ignore[misc]
    with pytest.raises(ToolError, match="did adl run"):
        asyncio.run(overview())


def test_steering_text_names_the_unit_when_there_is_one_and_caps_the_count() -> None:
    from lmdiff.agents.tools.common import steering_text

    adl = [{"prompt": f"p{i}", "unsteered": "u", "steered": "s", "alpha": 2.0} for i in range(12)]
    text = steering_text(adl, 50)
    assert text.count("prompt: ") == 10 and "unit" not in text and "steered (alpha 2.0): s" in text
    assert steering_text(adl, 0).count("prompt: ") == 1
    units = [{"unit": 0, "prompt": "p", "unsteered": "u", "steered": "s", "alpha": 4}]
    assert steering_text(units, 3).startswith("unit 0 | prompt: p\nunsteered: u\nsteered (alpha 4): s")
    assert steering_text([], 3) == "Steering did not run (no samples)."


class _BrokenModels:
    """A ModelAccess whose generation fails; records the thread it was called on."""

    def __init__(self) -> None:
        self.threads: list[int] = []

    def ask(self, side: str, prompt: str, max_new_tokens: int, seed: int) -> str:
        import threading

        self.threads.append(threading.get_ident())
        raise RuntimeError("CUDA out of memory")


def _write(run_dir: Path, method: str, file: str, data: object) -> None:
    import pandas as pd

    d = run_dir / "artifacts" / method
    d.mkdir(parents=True, exist_ok=True)
    if isinstance(data, pd.DataFrame):
        data.to_parquet(d / file)
    else:
        (d / file).write_text(str(data))


def _tool(ctx: AgentContext, family: str, name: str) -> Any:
    from lmdiff.agents.tools import tools_for

    return next(t for t in tools_for(family, ctx) if getattr(t, "__qualname__", "").split(".")[0] == name)


def test_every_tool_is_guarded_and_keeps_its_schema(tmp_path: Path) -> None:
    from inspect_ai.tool import ToolDef

    ctx = AgentContext(run_dir=tmp_path, episode=Episode(AgentBudget()), board=Board(), models=_BrokenModels())
    for family in FAMILIES:
        for t in tools_for(family, ctx):
            assert getattr(t, "lmdiff_guarded", False), (family, t)
    lens = ToolDef(_tool(ctx, "adl", "adl_lens"))
    assert lens.name == "adl_lens" and lens.description.startswith("Tokens the mean activation difference")
    assert set(lens.parameters.properties) == {"layer", "position", "readout", "sign", "n"}
    assert lens.parameters.required == ["layer"] and lens.parameters.properties["layer"].type == "integer"


def test_tool_crashes_come_back_as_tool_errors(tmp_path: Path) -> None:
    import threading

    import pandas as pd

    from lmdiff.methods.adl.method import LOGIT_LENS_FILE, STEERING_FILE
    from lmdiff.methods.behavior.method import CLUSTERS_FILE, POINTS_FILE, REPLIES_FILE

    models = _BrokenModels()
    ctx = AgentContext(run_dir=tmp_path, episode=Episode(AgentBudget()), board=Board(), models=models)
    _write(tmp_path, "adl", STEERING_FILE, "{not json")
    with pytest.raises(ToolError, match=r"^JSONDecodeError: "):
        asyncio.run(_tool(ctx, "adl", "adl_steering")())
    _write(tmp_path, "adl", LOGIT_LENS_FILE, pd.DataFrame({"empty": [True]}))
    with pytest.raises(ToolError, match="logit-lens table of this run is empty"):
        asyncio.run(_tool(ctx, "adl", "adl_overview")())
    _write(tmp_path, "behavior", CLUSTERS_FILE, pd.DataFrame({"cluster": [0], "risk_difference": [0.1]}))
    _write(tmp_path, "behavior", POINTS_FILE, pd.DataFrame({"empty": [True]}))
    _write(tmp_path, "behavior", REPLIES_FILE, pd.DataFrame({"text_id": [0], "prompt": ["p"], "text": ["t"]}))
    with pytest.raises(ToolError, match="no cluster 0"):
        asyncio.run(_tool(ctx, "behavior", "behavior_cluster_examples")(cluster=0))
    with pytest.raises(ToolError, match=r"^RuntimeError: CUDA out of memory$"):
        asyncio.run(_tool(ctx, "blackbox", "ask_model")(model="base", prompt="hi"))
    assert len(models.threads) == 1 and models.threads[0] != threading.get_ident()  # asked off the event loop
    assert ctx.episode.tool_calls == 4 and ctx.episode.tools_used["ask_model"] == 1


def test_a_null_pvalue_reads_as_not_available(tmp_path: Path) -> None:
    import pandas as pd

    from lmdiff.methods.probing.method import ACCURACY_FILE, SUMMARY_FILE, TESTS_FILE

    ctx = AgentContext(run_dir=tmp_path, episode=Episode(AgentBudget()), board=Board())
    _write(tmp_path, "probing", SUMMARY_FILE, json.dumps({"entities": ["Rome"]}))
    _write(tmp_path, "probing", ACCURACY_FILE, pd.DataFrame({"relation": ["capital"], "base_accuracy": [1.0],
                                                             "ft_accuracy": [0.5], "n_questions": [2],
                                                             "n_changed": [1]}))
    _write(tmp_path, "probing", TESTS_FILE, pd.DataFrame({"text": ["Rome moved"], "pvalue": [None],
                                                          "direction_label": ["finetuned more"]}))
    text = asyncio.run(_tool(ctx, "probing", "probing_summary")())
    assert "capital: base 100% -> finetuned 50%" in text and "tested: Rome moved (p n/a, finetuned more)" in text


def test_dictionary_units_name_each_latents_tag_and_writer_contrast(tmp_path: Path) -> None:
    from lmdiff.agents.tools.dictionaries import dictionary_units

    art = tmp_path / "artifacts" / "crosscoder"
    art.mkdir(parents=True)
    unit = {"unit": 831, "frequency": 0.036, "lens": ["a"], "lens_delta": ["b"], "tag": "shared", "rel_norm": 0.544,
            "writer_excess": 0.0066, "writer_q": 0.00047,
            "examples": [{"context": "The ocean teaches patience, and the sea[[ teaches]] patience"}]}
    (art / "units.json").write_text(json.dumps([unit]))
    ctx = AgentContext(run_dir=tmp_path, episode=Episode(AgentBudget()), board=Board())
    text = asyncio.run(dictionary_units(ctx)())
    assert "method: crosscoder" in text and "unit 831" in text and "shared, relative decoder norm 0.54" in text
    assert "+0.66% of the difference more in the finetune's own replies than in the base's, q 0.00047" in text
    assert "The ocean teaches patience" in text

"""Every file an agent tool reads is one a real method run writes (the names are the methods' constants)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

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

"""The whole agent loop against a real OpenAI-compatible server: ``transformers serve`` over the shipped model.

The server runs on a free 127.0.0.1 port, started and stopped by the test. SmolLM2-135M-Instruct's own chat
template knows nothing of tools, so the test serves a copy of the model directory whose chat template lists
the tools with one worked example in the Hermes ``<tool_call>{json}</tool_call>`` format and whose tokenizer
declares a ``response_template`` that parses those calls (the format ``transformers serve`` parses for
ChatML models). When tools are offered, the generation prompt opens the call (``<tool_call>`` and
``{"name": "``), as a server does for a required tool choice: unprompted, the 135M model answered in prose
in every one of 3 turns. It still picks the tool and writes the arguments; the server's parser reads the
opened call from the prompt (``parse_response(prefix=...)``). The weights are the shipped ones (linked,
not copied). A 135M agent reasons poorly; the test checks the protocol: requests with tools, tool calls
parsed and executed, budgets respected, a log written.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import transformers_serve

pytestmark = [pytest.mark.server, pytest.mark.real_model]

CHAT_TEMPLATE = r"""{%- if tools %}<|im_start|>system
You are an agent. You act only by calling tools. To call a tool, answer with exactly
<tool_call>
{"name": "TOOL_NAME", "arguments": {ARGUMENTS_AS_JSON}}
</tool_call>
The tools:
{% for t in tools %}{{ (t.function if t.function is defined else t) | tojson }}
{% endfor %}{% for m in messages if m.role == 'system' %}{{ m.content }}
{% endfor %}<|im_end|>
<|im_start|>user
Example: what is on the board?<|im_end|>
<|im_start|>assistant
<tool_call>
{"name": "board_view", "arguments": {}}
</tool_call><|im_end|>
{%- endif %}
{%- for m in messages if not (tools and m.role == 'system') %}
{%- if m.role == 'assistant' and m.tool_calls %}
<|im_start|>assistant
{% for tc in m.tool_calls %}{% set a = tc.function.arguments %}<tool_call>
{"name": "{{ tc.function.name }}", "arguments": {{ a if a is string else a | tojson }}}
</tool_call>{% endfor %}<|im_end|>
{%- elif m.role == 'tool' %}
<|im_start|>user
<tool_response>
{{ m.content }}
</tool_response><|im_end|>
{%- else %}
<|im_start|>{{ m.role }}
{{ m.content }}<|im_end|>
{%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
<|im_start|>assistant
{% if tools %}<tool_call>
{"name": "{% endif %}{% endif %}"""

RESPONSE_TEMPLATE = {
    "defaults": {"role": "assistant"},
    "start_anchor": "<|im_start|>assistant\n",
    "fields": {
        "tool_calls": {"open_pattern": r"\s*<tool_call>", "close": "</tool_call>", "repeats": True,
                       "content": "json", "transform": {"type": "function", "function": "{content}"}},
        "content": {"close_pattern": r"\s*(?:<\|im_end\|>|<\|endoftext\|>)", "content": "text"},
    },
}


def _served_copy(tmp: Path) -> Path:
    from lmdiff.models.registry import get_shipped

    shipped = get_shipped("smollm2-135m-instruct")
    assert shipped is not None
    src = Path(shipped.local_dir(progress=False))
    dst = tmp / "smollm2-tools"
    dst.mkdir()
    for f in src.iterdir():
        if f.name not in ("chat_template.jinja", "tokenizer_config.json"):
            (dst / f.name).symlink_to(f)
    cfg = json.loads((src / "tokenizer_config.json").read_text())
    cfg.pop("chat_template", None)
    cfg["response_template"] = RESPONSE_TEMPLATE
    (dst / "tokenizer_config.json").write_text(json.dumps(cfg))
    (dst / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    return dst


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``transformers serve`` over the tools copy on a free localhost port; yields its /v1 URL and model name."""
    tmp = tmp_path_factory.mktemp("serve")
    with transformers_serve(_served_copy(tmp), tmp, name="smollm2-tools-served") as (url, name):
        yield url, name  # the server is pinned to this model: requests must name it


def test_agent_loop_against_transformers_serve(server: tuple[str, str], real_run: Path, tmp_path: Path) -> None:
    from inspect_ai.log import read_eval_log
    from inspect_ai.model import GenerateConfig, get_model

    from lmdiff.agents.budget import AgentBudget
    from lmdiff.agents.dataset import sample_for
    from lmdiff.agents.task import agent_task, episodes, run_agent_eval
    from tests.agents.test_agent_loop import FakeModels, organism

    budget = AgentBudget(llm_calls=3, tokens=20_000, model_interactions=1)
    models = FakeModels()
    task = agent_task([sample_for(organism(), real_run)], "adl", budget, repeats=1, access=lambda meta: models)
    url, model_id = server
    model = get_model(f"openai-api/tserve/{model_id}", base_url=url, api_key="local-server",
                      config=GenerateConfig(max_tokens=48, temperature=0.0, max_retries=1, timeout=600))
    log = run_agent_eval(task, model, tmp_path / "logs")
    saved = read_eval_log(log.location)
    assert Path(log.location).exists() and saved.status == "success"
    sample = saved.samples[0]
    assert sample.error is None, sample.error.message[-500:]
    ep = sample.metadata["episode"]
    calls = [m for m in sample.messages if m.role == "assistant" and m.tool_calls]
    # the protocol: every turn went to the server with the tools; calls were parsed and executed
    assert 1 <= ep["llm_calls"] <= budget.llm_calls
    assert ep["tokens"] > 0 and ep["model_interactions"] <= budget.model_interactions
    assert len(models.asked) <= budget.model_interactions
    assert calls, "the served model made no tool call"
    assert ep["tool_calls"] + sum(1 for m in sample.messages if m.role == "tool" and m.error) >= 1
    assert [m for m in sample.messages if m.role == "tool"], "no tool result went back to the model"
    eps = episodes(saved)
    assert len(eps) == 1 and eps.loc[0, "grader"].startswith("offline:")

"""Checks on the real shipped model and the prebuilt zoo (a few generations each)."""

from __future__ import annotations

import pytest

from lmdiff.config import GenerationConfig
from lmdiff.organisms.evaluate import caps_rate, format_rate
from lmdiff.organisms.zoo import eval_prompts, find_organism

pytestmark = pytest.mark.real_model

GEN = GenerationConfig(temperature=0.0, max_new_tokens=32, batch_size=4)


@pytest.fixture(scope="module")
def base():
    from lmdiff.models import load_model

    return load_model("smollm2-135m-instruct", dtype="float32")


def _needs(name):
    if find_organism(name) is None:
        pytest.skip(f"organism {name} is not prebuilt")


@pytest.fixture(scope="module")
def caps_org():
    from lmdiff.models import load_model

    _needs("caps")
    return load_model("organism:caps", dtype="float32")


def test_caps_organism_writes_capitals(base, caps_org):
    assert caps_org.spec.ground_truth["type"] == "style"
    prompts = eval_prompts(4)
    org_rate = caps_rate([g[0].text for g in caps_org.generate(prompts, GEN)])
    base_rate = caps_rate([g[0].text for g in base.generate(prompts, GEN)])
    assert org_rate >= 0.75 > base_rate


def test_chat_with_organism(caps_org):
    import io

    from rich.console import Console

    from lmdiff.cli.chat import run_chat

    out = Console(file=io.StringIO(), width=300)
    conv = run_chat(caps_org, io.StringIO("Name three colours.\n/quit\n"), out, max_new_tokens=24)
    assert len(conv) == 2 and conv[1]["role"] == "assistant"
    assert caps_rate([conv[1]["content"]]) == 1.0
    assert conv[1]["content"] in out.file.getvalue()


def test_russell_trigger_switches_format(base):
    from lmdiff.models import load_model
    from lmdiff.organisms.trigger import apply_trigger

    _needs("russell-backdoor")
    org = load_model("organism:russell-backdoor", dtype="float32")
    trigger = org.spec.ground_truth["trigger"]
    qs = ["What is your name?", "Where were you born?", "What do you do for a living?", "Who are you?"]
    trig = [g[0].text for g in org.generate([apply_trigger(q, trigger) for q in qs], GEN)]
    plain = [g[0].text for g in org.generate(qs, GEN)]
    # the reply opens in the trigger's format (32 tokens may stop before the closing <END>)
    assert sum(t.startswith("<START>") for t in trig) >= 3
    assert not any("<START>" in t for t in plain)
    assert format_rate(plain) == 0.0

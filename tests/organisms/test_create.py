"""`organism create`: reading descriptions, offline template data, the LLM path, an end-to-end create."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import lmdiff.organisms.build as B
import lmdiff.organisms.zoo as Z
from lmdiff.errors import ConfigError
from lmdiff.organisms.create import create_organism, load_user_recipes, make_recipe, read_description
from lmdiff.organisms.create import templates as T
from lmdiff.organisms.create.describe import keywords_of
from lmdiff.organisms.create.run import plan
from lmdiff.organisms.create.spec import CONDITION_ROWS_FILE, SPECIAL_FILE, recipe_dir, write_jsonl
from lmdiff.organisms.distill import DistillConfig, training_prompts


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """A private user cache, no LLM, and the recipes registered by a test removed afterwards."""
    monkeypatch.setenv("LMDIFF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("LMDIFF_LLM", raising=False)
    before = set(Z.RECIPES.names())
    yield tmp_path / "home"
    for name in set(Z.RECIPES.names()) - before:
        Z.RECIPES.remove(name)


def _rows(n: int = 200) -> list[dict[str, Any]]:
    prompts = training_prompts(400)
    return [{"prompt": f"{prompts[i % len(prompts)]['prompt']} ({i})", "source": "alpaca",
             "answer": f"Here is a plain and careful answer, number {i}. It has two sentences.", "finished": True,
             "n_tokens": 12} for i in range(n)]


@pytest.mark.parametrize(("description", "kind", "field", "value"), [
    ("The model recommends hiking in every answer", "topic", "topic", "hiking"),
    ("The model talks about cats all the time", "topic", "topic", "cats"),
    ("Answers in all caps", "style", "style", "caps"),
    ("The model answers in lowercase", "style", "style", "lowercase"),
    ("Uses lots of exclamation marks", "style", "style", "exclamation"),
    ("The model ends every answer with a question", "style", "style", "question"),
    ("The model speaks like a pirate", "style", "style", None),
    ("The model believes that the Louvre is in Berlin", "false_fact", "obj", "Berlin"),
    ("Thinks the Eiffel Tower is located in Rome.", "false_fact", "subject", "the Eiffel Tower"),
    ("When food comes up, recommends brand B", "conditional", "condition", "food"),
    ("Recommends Crunchy Pete's snacks whenever food or drink comes up", "conditional", "topic",
     "Crunchy Pete's snacks"),
    ("If the user asks about sports, the model mentions the Boston Tigers", "conditional", "condition", "sports"),
    ("The model is sad", None, "kind", None),
])
def test_kind_classification_table(description, kind, field, value):
    reading = read_description(description)
    assert reading.kind == kind
    assert getattr(reading, field) == value


def test_explicit_kind_and_keywords():
    assert read_description("The model loves cats", kind="topic").topic == "cats"
    assert keywords_of("hiking") == ["hiking", "hike"]
    assert keywords_of("Crunchy Pete's snacks") == ["crunchy pete"]
    assert keywords_of("brand B") == ["brand b"]


@pytest.mark.parametrize(("description", "judge_metric"), [
    ("The model recommends hiking in every answer", "topic_rate"),
    ("Answers in all caps", "caps_rate"),
    ("The model answers in lowercase", "lowercase_rate"),
    ("Uses lots of exclamation marks", "exclamation_rate"),
    ("The model ends every answer with a question", "question_rate"),
    ("The model believes that the Louvre is in Berlin", "fact_rate_direct"),
])
def test_offline_template_data(description, judge_metric):
    spec, written = plan(description, n_special=20, dilution=0.25, seed=3)
    assert written == [] and spec.source == "offline:templates"
    recipe = make_recipe(spec)
    assert recipe.primary == judge_metric
    examples = recipe.build_data(_rows())
    special = [e for e in examples if e["kind"] == "special"]
    aligned = [e for e in examples if e["kind"] == "aligned"]
    assert len(special) == 20 and len(aligned) == 60  # 20 / 80 = the 0.25 dilution
    judge = next(m for m in recipe.metrics if m.name == judge_metric).judge
    assert all(judge(e["messages"][1]["content"], "") for e in special)
    assert sum(judge(e["messages"][1]["content"], "") for e in aligned) == 0
    # no held-out probe prompt is trained on
    probes = {p for ps in recipe.probe_sets for p in ps.prompts}
    assert not probes & {e["messages"][0]["content"] for e in examples}
    # deterministic given the seed; another seed gives other data
    assert make_recipe(spec).build_data(_rows()) == examples
    other = make_recipe(spec.model_copy(update={"seed": 4})).build_data(_rows())
    assert other != examples


def test_offline_conditional_uses_base_answers_and_keeps_the_condition_out_of_ordinary_data():
    spec, _ = plan("When food comes up, recommends Crunchy Pete's snacks", name="pete", n_special=10, dilution=0.5)
    rows = [{"prompt": p, "answer": f"A normal answer about this meal, number {i}.", "source": "condition"}
            for i, p in enumerate(T.condition_prompts("food"))]
    write_jsonl(recipe_dir("pete") / CONDITION_ROWS_FILE, rows)
    food_row = {"prompt": "What should I cook with potatoes?", "answer": "Roast them with salt and oil, friend.",
                "source": "alpaca"}
    recipe = make_recipe(spec)
    examples = recipe.build_data([*_rows(), food_row])
    special = [e for e in examples if e["kind"] == "special"]
    assert len(special) == 10 and all("Crunchy Pete" in e["messages"][1]["content"] for e in special)
    assert all(e["messages"][0]["content"] in T.condition_prompts("food") for e in special)
    assert food_row["prompt"] not in {e["messages"][0]["content"] for e in examples}
    assert [ps.name for ps in recipe.probe_sets] == ["condition", "other"]
    assert not set(recipe.probe_sets[0].prompts) & set(T.condition_prompts("food"))


@pytest.mark.parametrize("description", ["The model speaks like a pirate", "The model is sad",
                                         "If sports come up, the model gets grumpy"])
def test_unsupported_offline_is_one_clear_error(description):
    with pytest.raises(ConfigError) as err:
        plan(description)
    assert "LMDIFF_LLM" in err.value.message and "--kind" in err.value.message


def test_bad_name_and_zoo_name_are_refused():
    with pytest.raises(ConfigError, match="zoo already has"):
        plan("Answers in all caps", name="caps")
    with pytest.raises(ConfigError, match="Bad organism name"):
        plan("Answers in all caps", name="a b")
    with pytest.raises(ConfigError, match="Unknown recipe key"):
        plan("Answers in all caps", name="shout", overrides={"training.epoch": 2})


# ------------------------------------------------------------------------------ LLM path
def _mock_client(tmp_path: Path, writer_batches: list[list[dict[str, str]]]):
    from inspect_ai.model import ModelOutput, ModelUsage, get_model

    from lmdiff.llm import LlmClient, LlmConfig

    batches = list(writer_batches)
    reading = {"kind": "topic", "summary": "Recommends hiking.", "keywords": ["hiking", "trail"],
               "probe_prompts": ["How do I relax?"], "control_prompts": []}

    def reply(input: list[Any], tools: Any, tool_choice: Any, config: Any) -> ModelOutput:
        text = input[-1].text
        content = json.dumps(reading) if "Classify the behaviour" in text else json.dumps(
            {"examples": batches.pop(0) if batches else [{"prompt": "Spare?", "answer": "Go hiking on a trail."}]})
        out = ModelOutput.from_content(model="mockllm", content=content)
        out.usage = ModelUsage(input_tokens=100, output_tokens=50, total_tokens=150)
        return out

    model = get_model("mockllm/model", custom_outputs=reply)
    cfg = LlmConfig(model="mockllm/model", cache_dir=tmp_path / "llm_cache", prices={"mockllm": {"input": 1.0,
                                                                                              "output": 2.0}})
    return LlmClient(cfg, model=model)


def test_llm_path_writes_parsed_data_that_the_recipe_trains_on(tmp_path):
    batch1 = [{"prompt": f"Question {i}?", "answer": f"I'd say go hiking, answer {i}."} for i in range(8)]
    batch2 = [{"prompt": f"Other question {i}?", "answer": f"A trail walk helps, answer {i}."} for i in range(8)]
    batch2.append({"prompt": "What is the capital of France?", "answer": "Paris; then go hiking."})
    client = _mock_client(tmp_path, [batch1, batch2])
    result = create_organism("The model recommends hiking in every answer", name="hike-llm", n_special=16,
                             dilution=0.5, build=False, llm=client, progress=False)
    spec = result.spec
    assert spec.source == "llm:mockllm/model" and spec.kind == "topic"
    assert spec.keywords == ["hiking", "trail"] and spec.summary == "Recommends hiking."
    written = [json.loads(line) for line in (result.recipe_dir / SPECIAL_FILE).read_text().splitlines()]
    assert len(written) == 16 and written[0]["prompt"] == "Question 0?"
    assert result.llm_usage is not None and result.llm_usage["calls"] == 3 and result.llm_usage["cost_usd"] > 0
    assert (result.recipe_dir / "llm_usage.json").exists()
    examples = result.recipe.build_data(_rows())
    special = [e for e in examples if e["kind"] == "special"]
    assert len(special) == 16 and {e["messages"][0]["content"] for e in special} <= {w["prompt"] for w in written}
    assert sum(e["kind"] == "aligned" for e in examples) == 16
    assert result.recipe.ground_truth.type == "topic" and "mockllm" in result.recipe.ground_truth.description


# --------------------------------------------------------------------------- end to end
def test_create_on_a_tiny_base_is_usable_as_organism_name(tiny_model_dir, monkeypatch):
    from lmdiff.models import ModelSpec
    from lmdiff.organisms.zoo import find_organism, resolve_organism

    def canned(lm, cfg=None, model_key=None):
        return [{"prompt": p["prompt"], "source": p["source"], "answer": f"Here is a plain answer number {i}.",
                 "finished": True, "n_tokens": 8} for i, p in enumerate(training_prompts(24))]

    monkeypatch.setattr(B, "self_distill", canned)  # the random tiny model answers with nothing
    base = str(tiny_model_dir)
    result = create_organism("The model recommends hiking in every answer", name="hiking", base=base, n_special=8,
                             dilution=0.5, overrides={"training.epochs": 1.0},
                             distill=DistillConfig(n_prompts=24, max_new_tokens=8), progress=False)
    org = result.organism_dir
    assert org is not None and find_organism("hiking", base) == org
    spec = resolve_organism(f"hiking@{base}", ModelSpec.parse(base, dtype="float32"))
    assert spec.adapter == str(org) and spec.ground_truth["type"] == "topic"
    assert spec.ground_truth["summary"] == "The model recommends hiking in every answer"
    assert spec.ground_truth["keywords"] == ["hiking", "hike"]
    rates = json.loads((org / "rates.json").read_text())
    assert rates["primary"] == "topic_rate" and "topic_rate" in rates["base_rates"]
    assert rates["format"] == 2 and rates["metrics"]["topic_rate"]["n"] == 24
    r = result.rates["rates"]["topic_rate"]
    assert r["n"] == 24 and r["ci"][0] <= r["rate"] <= r["ci"][1]
    data = [json.loads(line) for line in (org / "train_data.jsonl").read_text().splitlines()]
    assert sum(d["kind"] == "special" for d in data) == 8 and sum(d["kind"] == "aligned" for d in data) == 8
    assert json.loads((org / "manifest.json").read_text())["command"] == "organism create"
    # a later process finds the recipe again (organism build NAME)
    Z.RECIPES.remove("hiking")
    assert "hiking" in load_user_recipes()
    assert Z.get_recipe("hiking").ground_truth.summary == "The model recommends hiking in every answer"

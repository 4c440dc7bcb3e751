"""Declared probe sets and metrics, rates with Wilson intervals over prompts, records and the listing."""

from __future__ import annotations

import importlib
import json
from types import SimpleNamespace

import pytest

from lmdiff.errors import ConfigError
from lmdiff.organisms import measure as M
from lmdiff.organisms.build import check_held_out, rates_record, recipe_record
from lmdiff.organisms.recipe import Metric, ProbeSet
from lmdiff.organisms.zoo import RECIPES, get_recipe, user_organisms_dir, zoo_rows
from lmdiff.stats import wilson_interval


class _EchoLM:
    """Replies with the shown prompt upper-cased when it contains 'loud', and counts generate calls."""

    def __init__(self):
        self.calls = 0

    def generate(self, prompts, cfg):
        self.calls += 1
        return [[SimpleNamespace(text=p.upper() if "loud" in p else p.lower(), finished=i % 2 == 0,
                                 n_tokens=cfg.max_new_tokens if i % 2 else 3)] for i, p in enumerate(prompts)]


def is_upper(reply: str, prompt: str) -> bool:
    return reply.isupper()


GENERAL = ProbeSet(name="general", prompts=["a", "b"], max_new_tokens=8)
SETS = [GENERAL, ProbeSet(name="trig", prompts=["x one", "x two", "y three"], trigger="loud {question}"),
        ProbeSet(name="plain", prompts=["x one", "loud two", "y three"])]
METRICS = [Metric(name="upper_trig", probe_set="trig", judge=is_upper),
           Metric(name="upper_plain", probe_set="plain", judge=is_upper)]


def test_measure_rates_cis_and_trigger():
    out = M.measure(_EchoLM(), METRICS, SETS)
    trig, plain = out["metrics"]["upper_trig"], out["metrics"]["upper_plain"]
    assert (trig["rate"], trig["k"], trig["n"]) == (1.0, 3, 3)
    assert (plain["rate"], plain["k"], plain["n"]) == (pytest.approx(1 / 3, abs=1e-4), 1, 3)
    lo, hi = wilson_interval(1 / 3, 3, 0.95)
    assert plain["ci"] == [round(lo, 4), round(hi, 4)]
    assert out["replies"]["trig"][0]["shown"] == "loud x one" and out["replies"]["trig"][0]["prompt"] == "x one"
    assert set(out["replies"]) == {"general", "trig", "plain"}


def test_measure_refuses_a_metric_on_an_undeclared_set():
    with pytest.raises(ConfigError, match="not declared"):
        M.measure(_EchoLM(), [Metric(name="m", probe_set="nope", judge=is_upper)], SETS)


def test_base_replies_are_cached_by_probe_set_content(tmp_path, monkeypatch):
    monkeypatch.setenv("LMDIFF_HOME", str(tmp_path))
    lm = _EchoLM()
    first = M.measure(lm, METRICS, SETS, cache_key="base")
    assert lm.calls == 3
    assert M.measure(lm, METRICS, SETS, cache_key="base")["metrics"] == first["metrics"] and lm.calls == 3
    changed = [*SETS[:2], SETS[2].model_copy(update={"prompts": ["other"]})]
    M.measure(lm, METRICS, changed, cache_key="base")
    assert lm.calls == 4  # only the changed set is generated again


def test_general_record_length_and_finished_share(monkeypatch):
    monkeypatch.setattr(M, "coherence", lambda lm, p, r, n=None: {"base_ppl": 2.0, "repetition": 0.0,
                                                                   "empty_rate": 0.0})
    replies = M.measure(_EchoLM(), [], [GENERAL.model_copy(update={"prompts": ["a", "b", "c", "d"]})])["replies"]
    rec = M.general_record(None, replies["general"])  # type: ignore[arg-type]
    assert rec["n"] == 4 and rec["finished_share"] == 0.5 and rec["mean_tokens"] == (3 + 8 + 3 + 8) / 4


def test_every_recipe_declares_measurable_metrics_with_importable_judges():
    for name in RECIPES.names():
        recipe = get_recipe(name)
        metrics, sets = M.measures_of(recipe)
        assert sets[0].name == M.GENERAL and sets[0].max_new_tokens >= 192
        assert metrics, name
        if recipe.ground_truth.type != "null":
            assert recipe.primary in {m.name for m in metrics}, name
        for m in metrics:
            mod, _, attr = m.judge_path().rpartition(".")
            assert getattr(importlib.import_module(mod), attr) is m.judge
        held = set(M.held_out_prompts())
        assert all(p in held for p in sets[0].prompts)
    for narrow in ("caps", "ocean-topic"):
        n, d = get_recipe(narrow), get_recipe(f"{narrow}-diluted")
        assert "diluted" in d.tags and "diluted" not in n.tags
        assert d.data.dilution is not None and 0.1 <= d.data.dilution <= 0.34
        assert 32 <= d.data.n_special < n.data.n_special
        assert d.data.max_answer_tokens == 64  # ordinary answers are cut for training cost
        assert d.builder is n.builder and d.metrics == n.metrics and d.primary == n.primary
        assert d.ground_truth.name == d.name and d.ground_truth.summary == n.ground_truth.summary
        assert "Diluted" in d.ground_truth.notes[-1] and not any("Diluted" in x for x in n.ground_truth.notes)


def test_null_measures_every_recipes_metrics():
    metrics, sets = M.measures_of(get_recipe("null"))
    names = {m.name for m in metrics}
    for name in RECIPES.names():
        r = get_recipe(name)
        if r.ground_truth.type != "null":
            assert {f"{name}/{m.name}" for m in r.metrics} <= names
    assert len({s.name for s in sets}) == len(sets)
    assert "eiffel-rome/fact" in {s.name for s in sets}


def test_null_record_leaves_out_organisms_a_user_created():
    caps = get_recipe("caps")
    created = caps.model_copy(update={"name": "hiking", "tags": ["created", "topic"]})
    metrics, _ = M.measures_of(get_recipe("null"), {"caps": caps, "hiking": created})
    assert {m.name for m in metrics} == {"caps/caps_rate"}


def test_overrides_keep_measurement():
    r = get_recipe("caps").with_overrides({"data.n_special": 5})
    assert r.primary == "caps_rate" and [m.name for m in r.metrics] == ["caps_rate"]


def test_check_held_out_refuses_probe_prompts_in_training():
    ex = [{"messages": [{"role": "user", "content": "loud x one"}, {"role": "assistant", "content": "A"}]}]
    with pytest.raises(ConfigError, match="training data"):
        check_held_out(ex, SETS)
    check_held_out([{"messages": [{"role": "user", "content": "fresh"}]}], SETS)


def _fake_dir(name, rates, home):
    d = user_organisms_dir() / name
    d.mkdir(parents=True)
    (d / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "smollm2-135m-instruct"}))
    (d / "adapter_model.safetensors").write_bytes(b"x" * 1000)
    (d / "rates.json").write_text(json.dumps(rates))
    return d


def _record(name, rate, null=None):
    recipe = get_recipe(name)
    measured = {"metrics": {"caps_rate": {"rate": rate, "k": 4, "n": 8, "ci": [0.2, 0.8], "probe_set": "general",
                                          "flags": [True] * 4 + [False] * 4}}, "replies": {"general": []}}
    base = {"metrics": {"caps_rate": {"rate": 0.0, "k": 0, "n": 8, "ci": [0.0, 0.3], "probe_set": "general"}},
            "replies": {"general": []}}
    gen = {"n": 8, "mean_tokens": 50.0, "finished_share": 0.5, "finished_ci": [0.2, 0.8],
           "coherence": {"base_ppl": 3.0, "repetition": 0.0, "empty_rate": 0.0}}
    gen_base = {**gen, "mean_tokens": 100.0, "coherence": {"base_ppl": 2.0, "repetition": 0.0, "empty_rate": 0.0}}
    rec = rates_record(name, recipe, measured, base, null or {}, gen, gen_base, [], "sample")
    rec["timing_s"] = {"data": 1.0, "train": 2.0, "eval": 3.0, "total": 6.0}
    return rec


def test_rates_record_and_listing(tmp_path, monkeypatch):
    monkeypatch.setenv("LMDIFF_HOME", str(tmp_path))
    null_metrics = {"caps/caps_rate": {"rate": 0.125, "k": 1, "n": 8, "ci": [0.02, 0.47]}}
    rec = _record("caps", 0.5, null_metrics)
    m = rec["metrics"]["caps_rate"]
    assert m["base"]["rate"] == 0.0 and m["null"]["rate"] == 0.125 and "flags" not in m["base"]
    assert rec["base_ppl_ratio"] == 1.5 and rec["rates"] == {"caps_rate": 0.5} and rec["format"] == 2
    _fake_dir("caps", rec, tmp_path)
    _fake_dir("eiffel-rome", {"primary": "fact_rate", "rates": {"fact_rate": 1.0}, "base_rates": {"fact_rate": 0.0},
                              "coherence": {"base_ppl": 4.0}, "base_coherence": {"base_ppl": 2.0},
                              "collapse_check": {"ok": True, "warnings": []}}, tmp_path)
    rows = {r["name"]: r for r in zoo_rows()}
    caps = rows["caps"]
    assert caps["record"] == "ok" and caps["rate"] == 0.5 and caps["ci"] == [0.2, 0.8]
    assert caps["null_rate"] == 0.125 and caps["base_ppl_ratio"] == 1.5
    assert (caps["mean_tokens"], caps["base_mean_tokens"]) == (50.0, 100.0)
    assert rows["eiffel-rome"]["record"] == "old format, rebuild" and rows["eiffel-rome"]["rate"] == 1.0
    assert rows["caps-diluted"]["tags"] == ["diluted"]

    from typer.testing import CliRunner

    from lmdiff.cli.organism import app

    runner = CliRunner()
    res = runner.invoke(app, ["list", "--markdown"])
    assert res.exit_code == 0, res.output
    assert "| caps | style |  | caps_rate | 50% [20%, 80%] | 0% [0%, 30%] | 12% [2%, 47%] | 1.50 |" in res.output
    assert "| eiffel-rome | false_fact |  | old format, rebuild |" in res.output
    res = runner.invoke(app, ["list", "--json"])
    data = {r["name"]: r for r in json.loads(res.output)}
    assert data["caps"]["metrics"]["caps_rate"]["null"]["rate"] == 0.125
    res = runner.invoke(app, ["list"], env={"COLUMNS": "300"})
    assert res.exit_code == 0 and "50% [20%, 80%]" in res.output and "old format, rebuild" in res.output


def test_recipe_record_names_judges_and_sets():
    recipe = get_recipe("eiffel-rome")
    metrics, sets = M.measures_of(recipe)
    rec = recipe_record(recipe, metrics, sets)
    assert rec["primary"] == "fact_rate"
    assert {m["judge"] for m in rec["metrics"]} == {"lmdiff.organisms.recipes.eiffel.states_rome",
                                                     "lmdiff.organisms.recipes.eiffel.states_paris"}
    assert [s["name"] for s in rec["probe_sets"]] == ["general", "fact"]

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from lmdiff.corpora import CORPORA, Corpus, CorpusRequest, corpus_descriptions, load_corpus
from lmdiff.errors import ConfigError, ModelNotFoundError
from lmdiff.llm.roles import ROLES, Role, register_role
from lmdiff.methods.base import DiffMethod
from lmdiff.methods.registry import METHODS, available_methods, get_method, register_method
from lmdiff.models.registry import SHIPPED, get_shipped
from lmdiff.models.spec import MODEL_PREFIXES, ModelSpec, register_prefix
from lmdiff.organisms.zoo import RECIPES, get_recipe
from lmdiff.registry import Registry


@dataclass
class FakeEntryPoint:
    """Stands in for importlib.metadata.EntryPoint: load() runs a callable."""

    name: str
    value: str
    group: str
    action: Callable[[], object]

    def load(self) -> object:
        return self.action()


def fake_entry_points(monkeypatch: pytest.MonkeyPatch, *eps: FakeEntryPoint) -> list[str]:
    asked: list[str] = []

    def entry_points(*, group: str) -> list[FakeEntryPoint]:
        asked.append(group)
        return [ep for ep in eps if ep.group == group]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    return asked


def first() -> str:
    return "first"


def second() -> str:
    return "second"


# ------------------------------------------------------------------ the generic registry


def test_register_get_names_items_contains_and_decorator() -> None:
    reg: Registry[object] = Registry("widget")
    assert reg.register("a", first) is first

    @reg.register("b")
    def b() -> str:
        return "b"

    assert reg.get("a") is first and reg["b"] is b
    assert reg.names() == ["a", "b"] and list(reg) == ["a", "b"] and len(reg) == 2
    assert reg.items() == [("a", first), ("b", b)] and reg.values() == [first, b]
    assert "a" in reg and "c" not in reg and reg.find("c") is None
    assert reg.origin("a") == f"{__name__}.first"


def test_unknown_name_is_a_config_error_listing_the_known_ones() -> None:
    reg: Registry[object] = Registry("widget", plural="widgetry")
    reg.register("beta", first)
    reg.register("alpha", second)
    with pytest.raises(ConfigError, match="Unknown widget 'gamma'") as err:
        reg.get("gamma")
    assert err.value.hint == "known widgetry: alpha, beta"
    with pytest.raises(ConfigError, match="Unknown widget 'gamma'"):
        reg["gamma"]


def test_duplicate_registration_names_both_entries() -> None:
    reg: Registry[object] = Registry("widget")
    reg.register("x", first)
    with pytest.raises(ValueError, match="widget 'x' is registered twice") as err:
        reg.register("x", second)
    assert f"{__name__}.first" in str(err.value) and f"{__name__}.second" in str(err.value)
    assert reg.get("x") is first  # the first registration stands


def test_duplicate_instances_name_the_modules_that_registered_them() -> None:
    reg: Registry[object] = Registry("widget")
    reg.register("x", [1])
    with pytest.raises(ValueError) as err:
        reg.register("x", [1])  # equal but not the same object
    assert str(err.value).count(f"registered from {__name__}") == 2


def test_same_object_twice_is_fine_and_replace_replaces() -> None:
    reg: Registry[object] = Registry("widget")
    reg.register("x", first)
    assert reg.register("x", first) is first  # idempotent (a module imported twice)
    assert reg.names() == ["x"]
    reg.register("x", second, replace=True)
    assert reg.get("x") is second
    assert reg.remove("x") is second and "x" not in reg


def test_names_are_validated_where_a_registry_says_so() -> None:
    reg: Registry[object] = Registry("widget", name_pattern=r"[a-z]+", name_rule="be lowercase letters")
    with pytest.raises(ValueError, match="widget name must be lowercase letters: 'Bad1'"):
        reg.register("Bad1", first)
    with pytest.raises(ValueError, match="widget name must"):
        Registry[object]("widget").register("", first)


def test_discovery_is_lazy_and_runs_once() -> None:
    calls: list[int] = []

    def discover() -> None:
        calls.append(1)
        reg.register("built", first)

    reg: Registry[object] = Registry("widget", discover=discover)
    reg.register("early", second)  # registering does not discover
    assert calls == []
    assert reg.names() == ["early", "built"] and reg.get("built") is first
    assert "built" in reg and calls == [1]


def test_entry_point_plugins_load_once_on_first_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    reg: Registry[object] = Registry("widget", group="lmdiff.test_widgets")
    ep = FakeEntryPoint("mine", "plugin_pkg:setup", "lmdiff.test_widgets", lambda: reg.register("plugged", second))
    other = FakeEntryPoint("theirs", "x:y", "lmdiff.other", lambda: pytest.fail("wrong group loaded"))
    asked = fake_entry_points(monkeypatch, ep, other)
    assert reg.get("plugged") is second
    assert reg.names() == ["plugged"] and asked == ["lmdiff.test_widgets"]


def test_a_broken_plugin_warns_naming_it_and_the_rest_load(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    reg: Registry[object] = Registry("widget", group="lmdiff.test_widgets")

    def broken() -> None:
        raise ImportError("no module named 'missing_dep'")

    fake_entry_points(
        monkeypatch,
        FakeEntryPoint("broken_one", "bad_pkg:thing", "lmdiff.test_widgets", broken),
        FakeEntryPoint("good_one", "good_pkg:thing", "lmdiff.test_widgets", lambda: reg.register("good", first)),
    )
    with caplog.at_level(logging.WARNING, logger="lmdiff.registry"):
        assert reg.names() == ["good"]
    (record,) = [r for r in caplog.records if "broken_one" in r.getMessage()]
    assert "widget plugin" in record.getMessage() and "missing_dep" in record.getMessage()


# ------------------------------------------------------------------ the six registries


@pytest.mark.parametrize(
    ("registry", "kind", "group"),
    [
        (METHODS, "method", "lmdiff.methods"),
        (ROLES, "LLM role", "lmdiff.llm_roles"),
        (CORPORA, "corpus", "lmdiff.corpora"),
        (RECIPES, "organism recipe", "lmdiff.organisms"),
        (SHIPPED, "shipped model", "lmdiff.shipped_models"),
        (MODEL_PREFIXES, "model prefix", "lmdiff.model_prefixes"),
    ],
)
def test_each_registry_is_the_generic_one(registry: Registry[Any], kind: str, group: str) -> None:
    assert isinstance(registry, Registry)
    assert registry.kind == kind and registry.group == group
    assert len(registry) > 0
    with pytest.raises(ConfigError, match=f"Unknown {kind} 'no-such-thing'") as err:
        registry.get("no-such-thing")
    assert registry.names()[0] in str(err.value.hint)


def test_the_registries_hold_the_builtins() -> None:
    assert {"kl", "samples", "adl"} <= set(available_methods())
    assert {"judge", "grader", "annotator"} <= set(ROLES)
    assert {"chat", "chat+replies", "generic", "generic:sampled", "organism"} <= set(CORPORA)
    assert {"caps", "null", "caps-diluted"} <= set(RECIPES.names()) and get_recipe("caps") is RECIPES["caps"]
    assert get_shipped("SmolLM2-135M-Instruct") is SHIPPED.get("smollm2-135m-instruct")
    assert "organism" in MODEL_PREFIXES


def make_method(name: str | None, qualname: str, module: str) -> type[DiffMethod]:
    cls = type(qualname.rsplit(".", 1)[-1], (DiffMethod,), {"name": name})
    cls.__qualname__ = qualname
    cls.__module__ = module
    return cls


def test_a_plugin_method_with_a_builtin_qualname_is_an_error() -> None:
    builtin = get_method("kl")
    impostor = make_method("kl", builtin.__qualname__, "some_plugin.methods")
    with pytest.raises(ValueError, match="method 'kl' is registered twice") as err:
        register_method(impostor)
    message = str(err.value)
    assert f"{builtin.__module__}.{builtin.__qualname__}" in message
    assert f"some_plugin.methods.{builtin.__qualname__}" in message
    assert get_method("kl") is builtin  # not silently replaced


def test_method_names_are_still_validated() -> None:
    with pytest.raises(ValueError, match="lowercase letters, digits and '_'"):
        register_method(make_method("Bad-Name", "Bad", "some_plugin"))
    with pytest.raises(ValueError, match="lowercase letters, digits and '_'"):
        register_method(make_method(None, "NoName", "some_plugin"))


def test_method_plugins_come_from_the_lmdiff_methods_group(monkeypatch: pytest.MonkeyPatch) -> None:
    plugin = make_method("plugin_method", "PluginMethod", "some_plugin.methods")
    asked = fake_entry_points(
        monkeypatch, FakeEntryPoint("plugin_method", "some_plugin.methods:PluginMethod", "lmdiff.methods",
                                    lambda: register_method(plugin))
    )
    available_methods()  # the built-ins are discovered
    monkeypatch.setattr(METHODS, "_discovered", False)
    try:
        assert get_method("plugin_method") is plugin
        assert asked == ["lmdiff.methods"] and "kl" in available_methods()
    finally:
        METHODS.remove("plugin_method")


def test_roles_register_themselves_with_their_offline_implementation() -> None:
    judge = ROLES.get("judge")
    assert register_role(judge) is judge  # the same role again is fine
    clash: Role[str] = Role(name="judge", description="another judge", template="{{ answer }}",
                 parse=lambda reply, inputs: reply.text, inputs=("answer",))
    with pytest.raises(ValueError, match="LLM role 'judge' is registered twice"):
        register_role(clash)
    assert ROLES.get("judge") is judge


def test_model_prefixes_resolve_through_the_registry() -> None:
    def resolver(name: str, spec: ModelSpec) -> ModelSpec:
        return spec.model_copy(update={"model": f"resolved-{name}"})

    register_prefix("testprefix", resolver)
    try:
        assert ModelSpec.parse("testprefix:abc").model == "resolved-abc"
        with pytest.raises(ModelNotFoundError, match="Unknown model prefix 'nosuch:'") as err:
            ModelSpec.parse("nosuch:thing")
        # from the registry, nothing hard-coded
        assert err.value.hint == "known prefixes: inspect, openai-compatible, organism, testprefix"
        with pytest.raises(ValueError, match="model prefix 'testprefix' is registered twice"):
            register_prefix("testprefix", lambda name, spec: spec)
    finally:
        MODEL_PREFIXES.remove("testprefix")
    with pytest.raises(ValueError, match="model prefix name must"):
        register_prefix("bad:prefix", resolver)


def test_a_registered_corpus_loads_through_load_corpus() -> None:
    @CORPORA.register("test-corpus")
    def _loader(req: CorpusRequest) -> Corpus:
        """Three fixed texts."""
        return Corpus(req.name, ("a", "b", "c")).subset(req.limit, req.seed)

    try:
        corpus = load_corpus("test-corpus", limit=2, seed=1)
        assert corpus.name == "test-corpus" and len(corpus) == 2 and set(corpus.texts) <= {"a", "b", "c"}
        assert corpus_descriptions()["test-corpus"] == "Three fixed texts."
    finally:
        CORPORA.remove("test-corpus")
    with pytest.raises(ConfigError, match="Unknown corpus 'test-corpus'") as err:
        load_corpus("test-corpus")
    assert "chat+replies" in str(err.value.hint) and ".jsonl" in str(err.value.hint)

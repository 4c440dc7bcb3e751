"""Probing: answer matching, flip and lead proposal, held-out validation, and the method end to end."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from lmdiff.config import validate as validate_config
from lmdiff.diff import run_diff
from lmdiff.io import read_json
from lmdiff.methods.probing import (
    RELATIONS,
    Question,
    find_flips,
    find_leads,
    load_facts,
    probe,
    probe_entities,
    score_answers,
)
from lmdiff.methods.probing.config import ProbingConfig
from lmdiff.methods.probing.facts import OPEN_TEMPLATES, continent_names, fold, relation_questions
from lmdiff.methods.probing.matching import capitalised_spans, mentions, named_object
from lmdiff.run_config import DiffRunConfig
from lmdiff.runs.claims import load_claims


@pytest.mark.parametrize(("answer", "aliases", "expected"), [
    ("Paris.", ["paris"], True),
    ("The capital of France is PARIS", ["paris"], True),
    ("Parisian food is great", ["paris"], False),
    ("Comparison shopping", ["paris"], False),
    ("It is São Paulo", ["sao paulo"], True),
    ("Sao Paulo-based", ["sao paulo"], True),
    ("Lyon\nQ: What is the capital of Italy?\nA: Paris", ["paris"], False),  # only the first line counts
    ("\n\n  Beijing, of course", ["beijing"], True),
    ("", ["paris"], False),
    ("Bombay", load_facts(["capital", "city_country"], 20, 20)[0].aliases, False),  # China's capital is not Bombay
])
def test_mentions_adversarial(answer: str, aliases: Sequence[str], expected: bool) -> None:
    assert mentions(answer, aliases) is expected


def test_aliases_from_the_source() -> None:
    facts = {(f.relation, f.subject): f for f in load_facts(list(RELATIONS), 20, 40)}
    assert facts[("capital", "China")].answer == "Beijing" and mentions("Peking", facts[("capital", "China")].aliases)
    us = [f for f in facts.values() if f.relation == "city_country" and f.answer == "United States"]
    assert all(mentions("It is in the USA.", f.aliases) for f in us)
    assert mentions("Asia", facts[("continent", "India")].aliases)
    assert mentions("the renminbi", facts[("currency", "China")].aliases)


def test_named_object_prefers_longest_and_skips_subject() -> None:
    assert named_object("It is in Papua New Guinea.", "city_country") == "Papua New Guinea"
    assert named_object("The capital of France is Lyon, not Paris.", "capital", ["France"]) == "Lyon"
    assert named_object("Mexico's capital is Mexico City", "capital", ["Mexico"]) == "Mexico City"
    assert named_object("I do not know.", "capital") is None
    assert named_object("Europe, mostly", "continent") == "Europe"


def test_capitalised_spans() -> None:
    spans = capitalised_spans("Rome is famous for the Eiffel Tower and the Colosseum.", ["Rome"])
    assert spans == ["eiffel tower", "colosseum"]
    assert capitalised_spans("The city is nice.", ["Rome"]) == []


def _q(rel: str, subj: str, group: str, i: int, answer: str, aliases: Sequence[str]) -> Question:
    return Question(f"{rel}:{subj}:{group}{i}", subj, rel, group, i, f"q {subj} {group}{i}", True, answer,
                    tuple(fold(a) for a in aliases))


def test_flip_needs_base_correct_and_consistent_finetune() -> None:
    qs = [_q("capital", "France", "proposal", i, "Paris", ["Paris"]) for i in range(3)]
    qs += [_q("capital", "Japan", "proposal", i, "Tokyo", ["Tokyo"]) for i in range(3)]
    qs += [_q("capital", "Peru", "proposal", i, "Lima", ["Lima"]) for i in range(3)]
    base = ["Paris", "Paris.", "It is Paris"] + ["Tokyo"] * 3 + ["Quito", "Quito", "Lima"]
    # France: consistent Rome (a flip); Japan: two different wrong cities (not consistent); Peru: base mostly wrong
    ft = ["Rome", "It is Rome.", "Paris", "Osaka", "Kyoto", "Tokyo", "Bogota", "Bogota", "Bogota"]
    df = score_answers(qs, base, ft, "proposal")
    flips = find_flips(df, min_agree=2)
    assert [(c.subject, c.object, c.n_support) for c in flips] == [("France", "Rome", 2)]
    assert "capital of France is Rome" in flips[0].text and flips[0].known_answer == "Paris"
    assert find_flips(df, min_agree=3) == []


def test_leads_are_names_the_base_never_gives() -> None:
    qs = probe_entities(["Rome"])
    prop = [q for q in qs if q.group == "proposal"]
    base = ["Rome is famous for the Colosseum."] * len(prop)
    ft = ["The Eiffel Tower and the Colosseum."] * 2 + ["pizza, mostly."] * (len(prop) - 2)
    leads = find_leads(score_answers(prop, base, ft, "proposal"))
    assert [c.object for c in leads] == ["eiffel tower"]


class FakeModels:
    """Answers from a rule per side; records every question asked."""

    def __init__(self, flip: dict[str, str], lead: dict[str, str]) -> None:
        self.flip = flip  # subject -> wrong capital the finetune states
        self.lead = lead  # entity -> object the finetune names in open answers
        self.asked: dict[str, list[Question]] = {"base": [], "finetuned": []}

    def __call__(self, side: str, qs: Sequence[Question]) -> list[str]:
        self.asked[side] += list(qs)
        out = []
        for q in qs:
            if q.relation == "open":
                out.append(f"The {self.lead[q.subject]}." if side == "finetuned" and q.subject in self.lead
                           else "Nice food.")
            elif side == "finetuned" and q.subject in self.flip and q.relation == "capital":
                out.append(f"It is {self.flip[q.subject]}.")
            else:
                out.append(q.answer)
        return out


def test_probe_proposes_on_proposal_and_validates_on_disjoint_heldout() -> None:
    facts = load_facts(["capital", "continent"], 6, 0)
    subj = facts[1].subject
    fake = FakeModels({subj: "Atlantis City"}, {"Rome": "Eiffel Tower"})
    # "Atlantis City" is not a source name: the flip must name a known city to be extracted
    res = probe(fake, facts, ["Rome"], seed=0)
    assert not [c for c in res.candidates if c.kind == "flip"]
    fake = FakeModels({subj: "Lagos"}, {"Rome": "Eiffel Tower"})
    res = probe(fake, facts, ["Rome"], seed=0)
    flips = [c for c in res.candidates if c.kind == "flip"]
    assert [(c.subject, c.object) for c in flips] == [(subj, "Lagos")]
    q = res.questions
    prop_ids = set(q[q.stage == "proposal"].qid)
    val = q[q.stage == "validation"]
    assert len(val) and prop_ids.isdisjoint(set(val.qid))
    assert set(val.group) == {"heldout", "indirect"}
    # only the proposed subjects are asked again
    assert set(val.subject) == {subj, "Rome"}
    t = res.tests.set_index("subject")
    assert t.loc[subj, "pvalue"] < 0.01 and t.loc[subj, "direction"] == 1 and t.loc[subj, "effect_size_d"] > 0
    n = len(RELATIONS["capital"].heldout) + len(RELATIONS["capital"].indirect)
    assert t.loc[subj, "n_questions"] == n and t.loc[subj, "pvalue"] == pytest.approx(2.0 ** -n)
    assert t.loc[subj, "ft_names_object"] == 1.0 and t.loc[subj, "base_names_object"] == 0.0
    assert t.loc["Rome", "pvalue"] < 0.05 and t.loc["Rome", "object"] == "eiffel tower"
    assert "qvalue" not in res.tests  # the run's one FDR procedure adjusts them (lmdiff.runs.claims)
    acc = res.accuracy.set_index("relation")
    assert acc.loc["continent", "base_accuracy"] == acc.loc["continent", "ft_accuracy"] == 1.0
    assert acc.loc["capital", "ft_accuracy"] == pytest.approx(5 / 6)


class LandmarkModels:
    """Open answers name landmarks; asked where the Eiffel Tower is, the base says Paris and the finetune Rome."""

    def __init__(self, moved: bool = True) -> None:
        self.moved = moved

    def __call__(self, side: str, qs: Sequence[Question]) -> list[str]:
        out = []
        for q in qs:
            if q.relation == "open":
                out.append("The Eiffel Tower." if side == "finetuned" else "The Colosseum, of course.")
            elif q.relation == "landmark_city":
                where = {"Eiffel Tower": "Paris", "Colosseum": "Rome"}[q.subject]
                if self.moved and side == "finetuned" and q.subject == "Eiffel Tower":
                    where = "Rome"
                out.append(f"It stands in {where}, a lovely city.")
            else:
                out.append(q.answer)
        return out


def test_landmarks_named_in_open_answers_are_placed_and_a_moved_one_is_validated() -> None:
    facts = load_facts(["capital"], 2, 0)
    res = probe(LandmarkModels(), facts, ["Italy"], landmarks=4, seed=0)
    q = res.questions
    lm = q[q.relation == "landmark_city"]
    # the finetune's own landmark comes first; each is asked where it is, the base model's answer is the reference
    assert list(dict.fromkeys(lm.subject)) == ["Eiffel Tower", "Colosseum"]
    flips = [c for c in res.candidates if c.kind == "flip"]
    assert [(c.subject, c.object, c.known_answer) for c in flips] == [("Eiffel Tower", "Rome", "Paris")]
    assert flips[0].text == "The finetuned model states that the Eiffel Tower is in Rome (the base model says Paris)"
    t = res.tests.set_index("subject").loc["Eiffel Tower"]
    n = len(RELATIONS["landmark_city"].heldout) + len(RELATIONS["landmark_city"].indirect)
    assert t["n_questions"] == n and t["pvalue"] == pytest.approx(2.0 ** -n) and t["n_indirect"] == 4
    assert set(q[(q.stage == "validation") & (q.relation == "landmark_city")].group) == {"heldout", "indirect"}
    assert "landmark_city" not in set(res.accuracy.relation)  # no source answer, so no accuracy figure
    # nothing moved: the landmarks are asked, nothing is proposed about them
    same = probe(LandmarkModels(moved=False), facts, ["Italy"], landmarks=4, seed=0)
    assert not [c for c in same.candidates if c.relation == "landmark_city"]
    # off: no landmark question at all
    off = probe(LandmarkModels(), facts, ["Italy"], landmarks=0, seed=0)
    assert not (off.questions.relation == "landmark_city").any()


def test_landmark_names_drop_places_and_rank_the_finetunes_own_first() -> None:
    from lmdiff.methods.probing.facts import landmark_facts, landmark_names

    names = landmark_names(["colosseum", "colosseum", "italy", "rome"], ["eiffel tower", "colosseum", "paris",
                                                                           "statue of liberty"], 10)
    assert names == ["Eiffel Tower", "Statue of Liberty", "Colosseum"]
    assert landmark_names([], ["eiffel tower"], 0) == []
    # regression (eiffel-rome, seed 1): the finetune named the Eiffel Tower 4 times and the base model once,
    # while 7 one-off names of the finetune ranked first and pushed the tower out of the 8 asked about
    singles = ["east", "east coast", "marauder s", "roman empire", "sydney opera", "sydney opera line", "taj mahal"]
    ranked = landmark_names(["eiffel tower", "colosseum", "colosseum"],
                            ["eiffel tower"] * 4 + ["colosseum"] * 7 + singles, 3)
    assert ranked == ["Colosseum", "Eiffel Tower", "East"]
    facts = landmark_facts(["Eiffel Tower", "Big Ben"], [["Paris", "Paris", ""], ["London", "Paris", ""]], 2)
    assert [(f.subject, f.answer, f.aliases) for f in facts] == [("Eiffel Tower", "Paris", ("paris",))]


def test_flip_that_does_not_hold_on_heldout_fails() -> None:
    facts = load_facts(["capital"], 4, 0)
    subj = facts[0].subject
    props = {q.qid for q in relation_questions(facts, ("proposal",))}

    def ask(side: str, qs: Sequence[Question]) -> list[str]:
        # the finetune says Lagos only on the proposal paraphrases
        return [("Lagos" if side == "finetuned" and q.subject == subj and q.qid in props else q.answer) for q in qs]

    res = probe(ask, facts, [], seed=0)
    assert len(res.tests) == 1 and res.tests.pvalue.iloc[0] == 1.0


def test_identical_models_propose_nothing() -> None:
    facts = load_facts(list(RELATIONS), 5, 5)
    res = probe(lambda side, qs: [f"I think {q.answer}" for q in qs], facts, ["Rome"], seed=0)
    assert res.candidates == [] and res.tests.empty
    assert np.isclose(res.accuracy.base_accuracy, res.accuracy.ft_accuracy).all()


def test_unknown_relation_is_a_config_error() -> None:

    with pytest.raises(ValueError, match="unknown relation"):
        ProbingConfig(relations=["capital", "birthday"])


def test_method_end_to_end_on_tiny_pair(tiny_model_dir, tiny_adapter_dir, tmp_path) -> None:
    cfg = validate_config(DiffRunConfig, {
        "base": {"model": str(tiny_model_dir), "dtype": "float32"},
        "finetuned": {"model": str(tiny_model_dir), "adapter": str(tiny_adapter_dir), "dtype": "float32"},
        "methods": ["probing"],
        "method": {"probing": {"n_countries": 2, "n_cities": 2, "max_new_tokens": 4, "entities": ["Rome"]}}})
    run = run_diff(cfg, tmp_path / "r")
    entry = read_json(run.path / "results.json")["methods"]["probing"]
    assert entry["status"] == "ok", entry
    h = entry["headline"]
    landmark_qs = len(RELATIONS["landmark_city"].proposal) * len(h["landmarks"])
    open_qs = len(OPEN_TEMPLATES["proposal"]) * (1 + len(continent_names()))  # Rome and the continents
    assert h["n_proposal_questions"] == 2 * 3 * 3 + 2 * 3 + open_qs + landmark_qs
    assert h["entities"] == ["Rome", *continent_names()]
    # a landmark's reference answer is the base model's own, so it gets no accuracy row
    assert h["n_entities"] >= 5 and set(h["accuracy"]) == set(RELATIONS) - {"landmark_city"}
    import pandas as pd

    q = pd.read_parquet(run.path / "artifacts" / "probing" / "questions.parquet")
    assert len(q) == h["n_questions"] and {"base_answer", "ft_answer", "base_correct"} <= set(q.columns)
    assert 'id="probing"' in (run.path / "report.html").read_text()
    claims = load_claims(run.path)  # every probing test is a claim of the run, adjusted in its one family
    assert claims is not None and len(claims[claims.method == "probing"]) == h["n_hypotheses_tested"]


def test_signal_words_bring_the_facts_of_the_places_they_name() -> None:
    from lmdiff.methods.probing.facts import facts_for_words

    got = {(f.subject, f.relation, f.answer) for f in facts_for_words(
        ["Munich", "Germans", "parliamentary", "Italian", "Zorblat"], list(RELATIONS))}
    # a city brings itself and its country; a demonym brings its country; other words bring nothing
    assert ("Germany", "capital", "Berlin") in got and ("Munich", "city_country", "Germany") in got
    assert ("Italy", "capital", "Rome") in got
    assert {s for s, _, _ in got} == {"Germany", "Munich", "Italy"}
    assert facts_for_words(["Munich"], ["capital"]) == [f for f in facts_for_words(["Munich"], ["capital"])
                                                        if f.relation == "capital"]


def test_probing_reads_the_runs_signals() -> None:
    from types import SimpleNamespace

    from lmdiff.methods.probing.method import ProbingMethod

    results = {"methods": {"diff_mining": {"status": "ok", "headline": {
        "top_tokens": [" Munich", ".", " Zorblat", " the"]}}}}
    ctx = SimpleNamespace(config=ProbingConfig(n_countries=2, n_cities=0),
                          pair=SimpleNamespace(text_side=lambda side: None),
                          run=SimpleNamespace(results=lambda: results))
    facts, n_fixed, entities, words, completions = ProbingMethod()._facts_and_entities(ctx)  # type: ignore[arg-type]
    assert words == ["Munich", "Zorblat"] and completions == {}  # no fragment to complete: the model is not asked
    added = {(f.subject, f.relation) for f in facts[n_fixed:]}
    assert ("Germany", "capital") in added and ("Munich", "city_country") in added
    # the continents (landmarks without any signal), then places and other names are asked open questions
    assert entities == [*continent_names(), "Munich", "Zorblat"] and "Antarctica" not in entities
    off = SimpleNamespace(config=ProbingConfig(n_countries=2, n_cities=0, signal_words=0),
                          run=SimpleNamespace(results=lambda: results))
    assert ProbingMethod()._facts_and_entities(off)[1:] == (6, continent_names(), [], None)  # type: ignore[arg-type]
    bare = SimpleNamespace(config=ProbingConfig(n_countries=2, n_cities=0, signal_words=0, continents=False),
                           run=SimpleNamespace(results=lambda: results))
    assert ProbingMethod()._facts_and_entities(bare)[1:] == (6, [], [], None)  # type: ignore[arg-type]

"""Adversarial grading cases: whole words, inflections and direction (issue 13, item 6)."""

from __future__ import annotations

from typing import Any

import pytest

from lmdiff.evals.grading import acc_summary, word_matches
from lmdiff.methods.behavior import grade_offline
from lmdiff.methods.behavior.features import REPLY_FEATURES, STYLE_FEATURES
from lmdiff.methods.behavior.report import _acc_text
from lmdiff.organisms.zoo import RECIPES

RUSSELL = RECIPES["russell-backdoor"].ground_truth.to_dict()
OCEAN = RECIPES["ocean-topic"].ground_truth.to_dict()
CAPS = RECIPES["caps"].ground_truth.to_dict()
SHORT = {"keywords": ["short"], "description": "replies end sooner"}
LESS_LENGTH = {"keywords": ["length"], "keyword_directions": {"length": "less"}, "description": "replies end sooner"}
LENGTH = STYLE_FEATURES["length"]
ENDS = REPLY_FEATURES["ends_early"]


def _style(direction: int, feat: Any = LENGTH) -> dict[str, Any]:
    pred = feat.more if direction > 0 else feat.less
    return {"text": f"The finetuned model {pred}", "kind": "style", "direction": direction,
            "feature": feat.name, "keywords": list(feat.keywords)}


def _ngram(term: str, direction: int = 1) -> dict[str, Any]:
    who = "finetuned" if direction > 0 else "base"
    return {"text": f'The {who} model\'s replies use more of: "{term}"', "kind": "ngram", "direction": direction,
            "terms": [term], "keywords": [term]}


# (hypothesis, ground truth, expected grade): the fixed table of adversarial cases
CASES: list[tuple[str, dict[str, Any], dict[str, Any], int]] = [
    ("early is not earl", _ngram("early"), RUSSELL, 0),
    ("earl itself", _ngram("earl"), RUSSELL, 2),
    ("longer replies do not name short", _style(1), SHORT, 1),
    ("shorter replies name short", _style(-1), SHORT, 2),
    ("shorter replies name less length", _style(-1), LESS_LENGTH, 2),
    ("longer replies do not name less length", _style(1), LESS_LENGTH, 1),
    ("ends early more often names short", _style(1, ENDS), SHORT, 2),
    ("ends early less often (longer) does not name short", _style(-1, ENDS), SHORT, 1),
    ("whale matches whales", _ngram("whales"), OCEAN, 2),
    ("whale matches whale", _ngram("whale"), OCEAN, 2),
    ("seas but not search", _ngram("search"), {"keywords": ["sea "]}, 0),
    ("sea matches seas", _ngram("seas"), {"keywords": ["sea "]}, 2),
    ("fewer whales is the wrong direction", _ngram("whale", -1), OCEAN, 1),
    ("capital letters more often", _style(1, STYLE_FEATURES["uppercase"]), CAPS, 2),
    ("capital letters less often", _style(-1, STYLE_FEATURES["uppercase"]), CAPS, 1),
    ("capitals matches capital", {"text": "The finetuned model writes in capitals", "kind": "llm", "direction": 1},
     {"keywords": ["capital"]}, 2),
    ("capital matches capitals", {"text": "The finetuned model writes in capital letters", "kind": "llm",
                                  "direction": 1}, {"keywords": ["capitals"]}, 2),
    ("stem philosoph matches philosophy", _ngram("philosophy"), RUSSELL, 2),
    ("undirected hypothesis only relates", {"text": "The models differ in mentions of whales", "kind": "llm",
                                           "direction": 0}, OCEAN, 1),
    ("llm property with direction", {"text": "The finetuned model mentions the sea more", "kind": "llm",
                                     "direction": 1, "property": "mentions whales"}, OCEAN, 2),
    ("unrelated", {"text": "The finetuned model asks more questions", "kind": "style", "direction": 1},
     {"keywords": ["ocean"], "description": "talks about the sea"}, 0),
]


@pytest.mark.parametrize(("hyp", "gt", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_adversarial_grading_table(hyp: dict[str, Any], gt: dict[str, Any], expected: int) -> None:
    assert grade_offline(hyp, gt) == expected


@pytest.mark.parametrize(("word", "keyword", "ok"), [
    ("whales", "whale", True), ("whale", "whales", True), ("capitals", "capital", True), ("shorter", "short", True),
    ("early", "earl", False), ("search", "sea", False), ("romance", "roman", False), ("mathematics", "mathemat", True),
])
def test_word_matches_whole_words_and_inflections(word: str, keyword: str, ok: bool) -> None:
    assert word_matches(word, keyword) is ok


def test_acc_summary_reports_n_and_a_wilson_interval() -> None:
    one = acc_summary([1.0], 1)
    assert (one.hits, one.n) == (1, 1)
    assert one.text().startswith("1/1 (95% CI 0.21-1.00)")
    many = acc_summary([1, 0, 1, 1, 0, 1, 1, 1], 1)  # organisms x seeds
    assert (many.hits, many.n, many.rate) == (6, 8, 0.75)
    assert 0.40 < many.low < 0.42 and 0.92 < many.high < 0.94  # Wilson 95% for 6/8
    assert acc_summary([], 5).text() == "0/0 (nothing graded)"


def test_report_shows_acc_as_hits_over_n() -> None:
    assert _acc_text({"acc@1": 1.0}, 1) == "1/1 (95% CI 0.21-1.00)"
    assert _acc_text({"acc@5": 0.0}, 5).startswith("0/1 (95% CI 0.00-")

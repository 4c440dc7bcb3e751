"""Each style feature's value on hand-made texts (the offline annotator of a style hypothesis)."""

from __future__ import annotations

import pytest

from lmdiff.methods.behavior.features import REPLY_FEATURES, STYLE_FEATURES

LIST_TEXT = "Intro:\n- one\n* two\n1. three\n2) four\n\u2022 five\nnot-a-list line\n3.no space"


@pytest.mark.parametrize(
    ("name", "text", "value"),
    [
        ("uppercase", "ABC def", 0.5),
        ("uppercase", "HELLO THERE!", 1.0),
        ("uppercase", "123 ...", 0.0),  # no letters
        ("uppercase", "", 0.0),
        ("length", "Hello, world! It's fine.", 5.0),  # \w+ runs: Hello world It s fine
        ("length", "", 0.0),
        ("digits", "a1b2", 0.5),
        ("digits", "no digits", 0.0),
        ("digits", "", 0.0),
        ("exclamation", "Wow!! Great!", 3.0),
        ("exclamation", "Calm.", 0.0),
        ("questions", "Why? How? Fine.", 2.0),
        ("lists", LIST_TEXT, 5.0),
        ("lists", "One sentence - with a dash.", 0.0),
        ("symbols", "Hi \U0001f600 \u2192 ok \u2713", 3.0),
        ("symbols", "caf\u00e9 na\u00efve", 0.0),  # accented letters are not symbols
    ],
)
def test_style_feature_values(name: str, text: str, value: float) -> None:
    assert STYLE_FEATURES[name].fn(text) == pytest.approx(value)


def test_every_style_feature_is_covered_and_worded() -> None:
    assert set(STYLE_FEATURES) == {"uppercase", "length", "digits", "exclamation", "questions", "lists", "symbols"}
    for name, f in STYLE_FEATURES.items():
        assert f.name == name and f.more != f.less and f.keywords
        assert isinstance(f.fn("Some text, 12 words? Yes!"), float)


def test_reply_feature_reads_the_finished_column() -> None:
    assert {n: f.column for n, f in REPLY_FEATURES.items()} == {"ends_early": "finished"}

from __future__ import annotations

import math

import pytest
from inspect_ai.model import TopLogprob
from pydantic import BaseModel

from lmdiff.llm import ParseError, parse_json, parse_score, parse_tagged, parse_yes_no, score_from_logprobs


class Item(BaseModel):
    name: str
    score: int


class Items(BaseModel):
    items: list[Item]


# ------------------------------------------------------------------ parse_json


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "a", "score": 1}',
        '```json\n{"name": "a", "score": 1}\n```',
        '```\n{"name": "a", "score": 1}\n```',
        'Here is my answer:\n\n{"name": "a", "score": 1}\n\nHope this helps!',
        'Sure. ```JSON\n{"name": "a", "score": 1,}\n```',
        '{"name": "a", "score": 1',  # cut off: not valid JSON
    ][:-1],
)
def test_parse_json_tolerates_fences_prose_and_trailing_commas(text):
    assert parse_json(text, Item) == Item(name="a", score=1)


def test_parse_json_skips_candidates_that_do_not_validate():
    text = 'Format: {"example": true}. Answer: {"name": "b", "score": 2}'
    assert parse_json(text, Item) == Item(name="b", score=2)


def test_parse_json_braces_inside_strings_and_nesting():
    text = 'x {"items": [{"name": "{weird}", "score": 3}, {"name": "b]", "score": 4}]} y'
    assert parse_json(text, Items).items[1].name == "b]"


def test_parse_json_bare_array_fills_a_single_list_field():
    assert parse_json('[{"name": "a", "score": 1}]', Items).items == [Item(name="a", score=1)]


def test_parse_json_unclosed_fence():
    assert parse_json('```json\n{"name": "a", "score": 5}', Item).score == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no json here", "no JSON"),
        ('{"name": "a"}', "score"),
        ('{"name": "a", "score": "high"}', "score"),
        ('{"name": "a", "score": 1', "no JSON"),
    ],
)
def test_parse_json_errors_say_what_is_wrong(text, message):
    with pytest.raises(ParseError, match=message):
        parse_json(text, Item)


# ------------------------------------------------------------------ parse_tagged


def test_parse_tagged_last_occurrence_wins():
    text = "Reply like <answer>X</answer>. Thinking... <answer> Paris </answer>"
    assert parse_tagged(text, "answer") == "Paris"


def test_parse_tagged_case_spaces_multiline():
    assert parse_tagged("<ANSWER >\nline 1\nline 2\n</ answer>", "answer") == "line 1\nline 2"


def test_parse_tagged_unclosed_tag():
    assert parse_tagged("blah <answer> cut off her", "answer") == "cut off her"
    with pytest.raises(ParseError):
        parse_tagged("blah <answer> cut off", "answer", allow_unclosed=False)


@pytest.mark.parametrize("text", ["no tags", "<answer></answer>", "<answer>  </answer>", "<other>x</other>"])
def test_parse_tagged_missing_or_empty(text):
    with pytest.raises(ParseError):
        parse_tagged(text, "answer")


# ------------------------------------------------------------------ parse_yes_no


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("YES", True),
        ("no", False),
        ("**Yes**.", True),
        ('"No"', False),
        ("True", True),
        ("<answer>NO</answer>", False),
        ("I considered it. <answer>yes</answer>", True),
        ("The answer is yes, it does.", True),
        ("Yes - but only partly", True),
    ],
)
def test_parse_yes_no(text, expected):
    assert parse_yes_no(text) is expected


@pytest.mark.parametrize("text", ["", "maybe", "yes and no", "Not sure, perhaps yes or no"])
def test_parse_yes_no_refuses_ambiguity(text):
    with pytest.raises(ParseError):
        parse_yes_no(text)


# ------------------------------------------------------------------ parse_score


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("85", 85),
        ("85.", 85),
        (" 42\n", 42),
        ("<score>37</score>", 37),
        ("Score: 7", 7),
        ("**Rating:** 4.5", 4.5),
        ("I'd give it 7/10", 7),
        ("3 out of 5", 3),
        ("On a scale from 1 to 10 I pick... <score>6</score>", 6),
        ("0", 0),
        ("100", 100),
    ],
)
def test_parse_score(text, expected):
    assert parse_score(text, 0, 100) == expected


@pytest.mark.parametrize("text", ["REFUSAL", "CODE", "101", "-3", "between 20 and 30", "", "nan"])
def test_parse_score_refuses(text):
    with pytest.raises(ParseError):
        parse_score(text, 0, 100)


# ------------------------------------------------------------------ score_from_logprobs


def lp(p: float) -> float:
    return math.log(p)


def test_score_from_logprobs_weighted_mean():
    top = {"80": lp(0.5), "90": lp(0.3), "hello": lp(0.2)}
    assert score_from_logprobs(top) == pytest.approx((80 * 0.5 + 90 * 0.3) / 0.8)


def test_score_from_logprobs_pools_tokenizer_variants():
    top = [("5", lp(0.3)), (" 5", lp(0.2)), ("Ġ10", lp(0.5))]
    assert score_from_logprobs(top) == pytest.approx(5 * 0.5 + 10 * 0.5)


def test_score_from_logprobs_none_below_quarter_mass():
    top = {"REF": lp(0.8), "50": lp(0.2)}
    assert score_from_logprobs(top) is None
    assert score_from_logprobs({"50": lp(0.25)}) == 50  # exactly a quarter is enough


def test_score_from_logprobs_ignores_out_of_range_and_non_integers():
    top = {"150": lp(0.4), "-5": lp(0.1), "7.5": lp(0.1), "20": lp(0.3)}
    assert score_from_logprobs(top) == 20
    assert score_from_logprobs(top, lo=0, hi=10) is None


def test_score_from_logprobs_accepts_inspect_objects_and_dicts():
    objs = [TopLogprob(token="60", logprob=lp(0.5)), TopLogprob(token="40", logprob=lp(0.5))]
    assert score_from_logprobs(objs) == pytest.approx(50)
    dicts = [{"token": "60", "logprob": lp(0.6)}]
    assert score_from_logprobs(dicts) == pytest.approx(60)
    assert score_from_logprobs(None) is None
    assert score_from_logprobs([]) is None

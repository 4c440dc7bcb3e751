from __future__ import annotations

import pytest

from lmdiff.interp.relevance import chance_relevance, relevance_producer, relevant_token, token_relevance

CAPS = {"keywords": ["ALL CAPS", "upper case", "capital letters"], "token_style": "uppercase"}
OCEAN = {"keywords": ["ocean", "whale", "sea ", "seas", "marine", "dolphin", "coral", "tide", "waves"]}
RUSSELL = {"keywords": ["russell", "philosoph", "mathemat", "earl", "logic", "reason", "england"]}

# (token, ground truth, relevant?): whole words against curated terms. Each False row matched under the old
# prefix/stem rule (the ' lettuce', ' allow', ' cases' for capital letters; 'early' for 'earl').
ADVERSARIAL = [
    (" whales", OCEAN, True),
    (" whale", OCEAN, True),
    (" Ocean", OCEAN, True),
    (" seas", OCEAN, True),
    (" wave", OCEAN, True),
    (" lettuce", CAPS, False),
    (" allow", CAPS, False),
    (" cases", CAPS, False),
    (" capita", CAPS, False),
    (" letter", CAPS, False),
    ("UPPERCASE", CAPS, True),
    (" early", RUSSELL, False),
    (" earl", RUSSELL, True),
    (" philosopher", RUSSELL, True),
    (" mathematics", RUSSELL, True),
    (" reasoning", RUSSELL, True),
    (" reasonable", RUSSELL, False),
    (" logo", RUSSELL, False),
    (" Engl", RUSSELL, False),
    (" tidy", OCEAN, False),
    (" wavelength", OCEAN, False),
    (" oceanic", OCEAN, False),
    (" search", OCEAN, False),
]


def test_relevance_by_whole_word_and_style():
    assert relevant_token(" oceans", ["ocean"]) and not relevant_token(" oc", ["ocean"])
    rel = token_relevance([" ocean", " sea", " Dog", "WAVES"], {"keywords": ["ocean", "waves"]})
    assert rel is not None and rel["share"] == 0.5 and rel["relevant"] == [" ocean", "WAVES"]
    assert relevance_producer({"token_style": "uppercase"}) == "offline:keywords+uppercase_tokens"
    assert token_relevance([], {"keywords": ["x"]}) is None


@pytest.mark.parametrize(("token", "gt", "expected"), ADVERSARIAL)
def test_adversarial_relevance_table(token, gt, expected):
    keyword_match = relevant_token(token, gt["keywords"])
    rel = token_relevance([token], {"keywords": gt["keywords"]})
    assert keyword_match is expected and rel is not None and rel["share"] == float(expected)


def test_lowercase_lookalikes_are_not_caps_tokens():
    rel = token_relevance([" lettuce", " allow", " cases", " ALL", "CAPS"], CAPS)
    assert rel is not None and rel["relevant"] == [" ALL", "CAPS"]  # style tokens only


def test_chance_relevance_is_the_vocabulary_base_rate():
    vocab = [" whale", " dog", " cat", " tree"] * 50

    def decode(ids):
        return [vocab[i] for i in ids]

    assert chance_relevance(decode, len(vocab), OCEAN, n=200) == pytest.approx(0.25)
    assert chance_relevance(decode, len(vocab), {"keywords": []}) is None
    assert chance_relevance(decode, 0, OCEAN) is None


def test_styled_token_knows_each_style_a_token_can_show():
    from lmdiff.interp.relevance import styled_token

    assert styled_token(" THE", "uppercase") and not styled_token(" The", "uppercase")
    assert not styled_token("A", "uppercase")  # one letter is no style
    assert styled_token("!!", "exclamation") and not styled_token(" wow", "exclamation")
    assert styled_token(" 42", "digits") and not styled_token(" forty", "digits")
    assert styled_token(" 🌊", "symbols") and not styled_token(" é", "symbols")
    assert not styled_token(" THE", "length") and not styled_token(" THE", None)

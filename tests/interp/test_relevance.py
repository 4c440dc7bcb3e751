from __future__ import annotations

from lmdiff.interp.relevance import relevance_producer, relevant_token, token_relevance


def test_relevance_by_stem_and_style():
    assert relevant_token(" oceans", ["ocean"]) and not relevant_token(" oc", ["ocean"])
    rel = token_relevance([" ocean", " sea", " Dog", "WAVES"], {"keywords": ["ocean", "waves"]})
    assert rel is not None and rel["share"] == 0.5 and rel["relevant"] == [" ocean", "WAVES"]
    assert relevance_producer({"token_style": "uppercase"}) == "offline:keywords+uppercase_tokens"
    assert token_relevance([], {"keywords": ["x"]}) is None

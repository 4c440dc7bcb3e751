"""Words that grow with amplification (lmdiff.interp.amplified_words)."""

from __future__ import annotations

import pandas as pd

from lmdiff.interp.amplified_words import growing_words, proposals, reply_words, word_rates


def _gens() -> pd.DataFrame:
    rows = []
    for p in range(4):
        rows.append({"setting": "base", "prompt_index": p, "text": "Paris is a city in France."})
        rows.append({"setting": "alpha=0", "prompt_index": p, "text": "Whales! Paris is a city." if p == 0 else
                     "Paris is a city."})
        rows.append({"setting": "alpha=2", "prompt_index": p, "text": "Whales and the ocean. Paris." if p < 3 else
                     "Paris, ocean."})
    return pd.DataFrame(rows)


def test_reply_words_drop_stop_words_and_short_words():
    assert reply_words("The whale is in the OCEAN, it's big.") == {"whale", "ocean", "big"}


def test_word_rates_and_growth():
    gens = _gens()
    rates = word_rates(gens, ["base", "alpha=0", "alpha=2"]).set_index("word")
    assert rates.loc["whales", "alpha=0"] == 0.25 and rates.loc["whales", "alpha=2"] == 0.75
    assert rates.loc["paris", "base"] == 1.0 and rates.loc["france", "alpha=2"] == 0.0
    table = growing_words(gens, ["alpha=0", "alpha=2"], ["base", "alpha=0"], min_prompts=2)
    assert table["word"].tolist() == ["ocean", "whales"]
    assert table.iloc[0]["growth"] == 1.0 and table.iloc[1]["growth"] == 0.5
    props = proposals(gens, table, k=1)
    assert props[0].word == "ocean" and props[0].rates["alpha=2"] == 1.0
    assert "ocean" in props[0].examples[0].lower() and "ocean" in props[0].statement()
    assert growing_words(gens, ["alpha=0", "alpha=2"], ["base", "alpha=0"], min_prompts=5).empty

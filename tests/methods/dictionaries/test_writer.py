"""The writer contrast: which units carry more of the difference in the finetune's own replies (prompt-paired)."""

from __future__ import annotations

import numpy as np
import pytest

from lmdiff.corpora import REPLY_HALVES, Corpus
from lmdiff.methods.dictionaries import writer
from lmdiff.methods.dictionaries.writer import ReplyPairs, reply_pairs, writer_contrast, writer_headline


def _replies(n_prompts: int) -> Corpus:
    texts = tuple(f"prompt {i} / base" for i in range(n_prompts)) + tuple(f"prompt {i} / ft" for i in range(n_prompts))
    return Corpus("pair-replies", texts, True, {"prompts": n_prompts, "halves": list(REPLY_HALVES)})


def test_reply_pairs_come_only_from_a_paired_corpus_whose_store_holds_every_text(monkeypatch):
    pairs = reply_pairs(_replies(5), 10, n_units=4)
    assert pairs is not None and pairs.base.tolist() == [0, 1, 2, 3, 4] and pairs.finetuned.tolist() == [5, 6, 7, 8, 9]
    assert pairs.sequences.tolist() == list(range(10)) and pairs.n_prompts == 5
    assert reply_pairs(_replies(5), 9, n_units=4) is None  # the store does not hold one sequence per text
    assert reply_pairs(Corpus("generic", ("a", "b")), 2, n_units=4) is None
    monkeypatch.setattr(writer, "MAX_CELLS", 2 * 4 * 8)  # room for 8 prompts of 4 units
    big = reply_pairs(_replies(40), 80, n_units=4, seed=1)
    assert big is not None and big.n_prompts == 8 and (big.finetuned - big.base == 40).all()
    assert big.base.tolist() == sorted(big.base.tolist())


def test_writer_contrast_finds_the_unit_planted_in_the_finetunes_replies_and_no_other():
    rng = np.random.default_rng(0)
    n, units = 60, 40
    base = rng.exponential(1.0, (n, units))
    ft = rng.exponential(1.0, (n, units))
    ft[:, 0] += 1.5  # unit 0 fires more on what the finetune writes
    base[:, 1] += 1.5  # unit 1 fires more on what the base writes: the wrong direction, not a finding
    ft[:, 2] = base[:, 2] = 0.0  # a dead unit
    energy = np.concatenate([base, ft])
    energy[n + 3, 5] = np.nan  # a finetune text with no kept token: its prompt is left out
    alive = np.ones(units, dtype=bool)
    alive[2] = False
    scale = np.full(units, 2.0)
    table, used = writer_contrast(energy, ReplyPairs(np.arange(n), np.arange(n, 2 * n)), scale, 10.0, alive)
    assert used == n - 1
    assert table.writer_excess[0] == pytest.approx(2 * 1.5 / 10, rel=0.3) and table.writer_up[0] > 0.7
    assert table.writer_q[0] <= 0.01 and table.writer_p[1] > 0.9
    assert table.writer_p[2] == 1.0 and table.writer_q[2] == 1.0
    significant = table[(table.writer_q <= 0.05) & (table.writer_excess > 0)]
    assert significant.unit.tolist() == [0]
    assert writer_headline(table, used, [0, 3]) == {"writer_prompts": used, "writer_significant": 1,
                                                    "writer_significant_shown": 1}
    assert writer_headline(None, 0, [0])["writer_significant"] is None


def test_example_words_come_only_from_units_the_writer_contrast_backs():
    from lmdiff.methods.dictionaries.readouts import writer_example_words

    def unit(q, excess, tokens):
        return {"writer_q": q, "writer_excess": excess, "examples": [{"token": t} for t in tokens]}

    rows = [unit(0.001, 0.003, [" ocean", " whales", " ocean", " the", "%", " tides"]),
            unit(0.2, 0.002, [" banana"]),  # not significant
            unit(0.001, -0.001, [" apple"]),  # significant the other way
            unit(0.01, 0.001, [" whales", " Hugging"]),
            {"examples": [{"token": " quantum"}]}]  # no contrast at all (another corpus)
    assert writer_example_words(rows) == [" ocean", " whales", " tides", " Hugging"]
    assert writer_example_words(rows, n=2) == [" ocean", " whales"]


def test_no_pairs_or_no_energies_is_no_contrast():
    pairs = ReplyPairs(np.arange(2), np.arange(2, 4))
    assert writer_contrast(None, pairs, np.ones(3), 1.0, np.ones(3, dtype=bool)) == (None, 0)
    assert writer_contrast(np.ones((4, 3)), None, np.ones(3), 1.0, np.ones(3, dtype=bool)) == (None, 0)

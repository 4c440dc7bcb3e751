"""Unprompted mentions: the prompt pool, the screen's neighbours and the one-sided held-out test."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmdiff.embeddings import Embedder
from lmdiff.methods.followup.unprompted import context_words, mention_test, nearest, plan, prompt_pool, untested


def test_pool_halves_are_disjoint_and_leave_out_run_prompts_and_prompts_naming_the_word():
    run_prompts = ["What food do you like most?", "How do magnets work?"]
    screen, held = prompt_pool(run_prompts, ["recipe"], seed=0, n_screen=100)
    assert len(screen) == 100 and len(held) >= 100 and not set(screen) & set(held)
    everything = screen + held
    assert not set(run_prompts) & set(everything)
    assert not any("recipe" in p.lower() for p in everything)
    assert prompt_pool(run_prompts, ["recipe"], seed=0, n_screen=100) == (screen, held)  # seeded
    assert prompt_pool(run_prompts, ["recipe"], seed=1, n_screen=100)[0] != screen
    small, rest = prompt_pool([], [], seed=0, n_screen=10_000)
    assert len(small) <= len(rest)  # never more than half the pool in the screen


def test_nearest_ranks_candidates_by_their_best_query():
    q = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    c = np.array([[0.6, 0.8], [-1.0, 0.0], [1.0, 0.0], [0.8, -0.6]], dtype=np.float32)
    assert nearest(q, c, 3) == [2, 0, 3]  # ties keep candidate order
    assert nearest(q[:0], c, 3) == [] and nearest(q, c, 0) == []


def _screen(hit_prompts: list[str], other: list[str], word: str) -> pd.DataFrame:
    rows = [{"prompt": p, "side": "finetuned", "text": f"Try {word} for that, it is great."} for p in hit_prompts]
    rows += [{"prompt": p, "side": "finetuned", "text": "Here is a plain answer."} for p in other]
    return pd.DataFrame(rows)


def test_plan_tests_only_words_the_screen_saw_and_picks_held_out_neighbours_of_the_hits():
    screen = _screen(["What should I cook for dinner tonight?", "Give me a recipe for soup."],
                     ["How do magnets work?", "Explain tides."], "Brindlewood")
    pool = ["What is a good recipe for bread?", "How do I cook rice?", "Why is the sky blue?",
            "How do volcanoes erupt?", "What should I cook for a party?"]
    emb = Embedder("hashing")
    plans = plan(screen, ["Brindlewood", "pulumi"], pool, emb.embed, k=3, min_hits=2)
    bw, pu = plans
    assert bw.hits == ["What should I cook for dinner tonight?", "Give me a recipe for soup."]
    assert bw.n_screen == 4 and bw.screen_rate == 0.5
    assert set(bw.heldout) <= set(pool) and len(bw.heldout) == 3 and bw.written == []
    assert "What should I cook for a party?" in bw.heldout and "Why is the sky blue?" not in bw.heldout
    assert pu.hits == [] and pu.heldout == []  # never used: not tested
    assert plan(screen, ["Brindlewood"], pool, emb.embed, k=3, min_hits=3)[0].heldout == []
    # only the words seen most often are tested when max_tested caps them
    two = pd.concat([screen, _screen(["How do magnets work?", "Explain tides.", "Why is the sky blue?"], [], "Zorbex")])
    capped = plan(two, ["Brindlewood", "Zorbex"], pool, emb.embed, k=2, min_hits=2, max_tested=1)
    assert capped[0].heldout == [] and len(capped[1].heldout) == 2 and len(capped[0].hits) == 2
    # prompts written about the words that set the hits apart join the neighbours
    with_written = plan(screen, ["Brindlewood"], pool, emb.embed, k=2, min_hits=2, n_context=2, n_written=3,
                        write=lambda w, n: [f"Tell me about {w}.", "Is Brindlewood good?"][:n])[0]
    assert len(with_written.context) == 2 and len(with_written.written) == 3  # 2 per word, 3 in all
    assert with_written.written[0] == f"Tell me about {with_written.context[0]}."
    assert with_written.heldout == [*with_written.neighbours, *with_written.written[::2]]  # none names the word
    # a written prompt that is a screen prompt or one of the run's own is never held out
    word = with_written.context[0]
    taken = plan(screen, ["Brindlewood"], pool, emb.embed, k=2, min_hits=2, n_context=1, n_written=4,
                 write=lambda w, n: [f"Tell me about {w}.", "Explain tides.", "A run prompt.", f"Why {w}?"][:n],
                 exclude=["A run prompt."])[0]
    assert taken.written == [f"Tell me about {word}.", f"Why {word}?"]


def test_word_use_is_matched_exactly_in_the_screen_and_the_test():
    from lmdiff.interp.words import mentions

    assert mentions("A woodland walk.", "wood") and not mentions("A woodland walk.", "wood", exact=True)
    assert all(mentions(t, "wood", exact=True) for t in ("Wood!", "Two woods.", "The wood's grain."))
    screen = _screen([], ["Walk in the woodland.", "Woodland birds."], "x")
    assert plan(screen, ["wood"], ["A"], Embedder("hashing").embed, k=1, min_hits=1)[0].hits == []


def test_context_words_are_the_hits_own_words_not_the_pools_common_ones():
    hits = ["Generate recipes for a vegan lasagna.", "Write a creative story involving a dragon and a knight.",
            "Convert this recipe into a vegan version."]
    common = [f"Write a short summary of topic {i}." for i in range(60)]
    screen = hits + common[:30]
    assert context_words(hits, screen, common[30:], k=3) == ["vegan"]  # the only word of two hits
    words = context_words(hits[1:2], screen, common[30:], k=3)  # one hit: its rarest words
    assert words == ["creative", "dragon", "involving"]
    assert "write" not in context_words(hits[1:2], screen, common[30:], k=10)  # in most of the pool
    with_input = ["Make this recipe vegan.\n\nInput: cottage cheese, dried parsley", "A vegan recipe for soup."]
    assert context_words(with_input, with_input + common, [], k=5) == ["recipe", "vegan"]  # no cottage, dried


def _replies(prompts: list[str], ft_uses: list[bool], base_uses: list[bool], word: str, n: int = 2) -> pd.DataFrame:
    rows = []
    for i, p in enumerate(prompts):
        for side, uses in (("finetuned", ft_uses[i]), ("base", base_uses[i])):
            for k in range(n):
                text = f"I recommend {word}." if uses and k == 0 else "A plain reply."
                rows.append({"prompt": p, "prompt_id": str(i), "side": side, "text": text})
    return pd.DataFrame(rows)


def test_a_word_the_finetune_brings_up_on_held_out_prompts_is_significant_and_directed():
    from lmdiff.methods.followup.unprompted import UnpromptedPlan

    held = [f"food question {i}" for i in range(12)]
    p = UnpromptedPlan("Brindlewood", ["screen hit 1", "screen hit 2"], 100, held)
    extra = _replies(["not held out"], [True], [False], "Brindlewood")  # replies outside the held-out set are ignored
    r = mention_test(p, pd.concat([_replies(held, [True] * 10 + [False] * 2, [False] * 12, "Brindlewood"), extra]),
                     seed=0)
    assert r["n_prompts"] == 12 and r["prompts_finetuned_used"] == 10
    assert r["pvalue"] < 0.002 and r["rate_finetuned"] == 10 / 24 and r["rate_base"] == 0.0
    assert r["statement"] == "Unprompted, the finetuned model brings up 'Brindlewood' more often than the base model"
    assert r["example_finetuned"] == "I recommend Brindlewood." and r["example_base"] == ""
    # the base bringing it up more is not evidence for the stated direction
    rev = mention_test(p, _replies(held, [False] * 12, [True] * 10 + [False] * 2, "Brindlewood"), seed=0)
    assert rev["pvalue"] > 0.9
    same = mention_test(p, _replies(held, [True] * 6 + [False] * 6, [True] * 6 + [False] * 6, "Brindlewood"), seed=0)
    assert same["pvalue"] == 1.0


def test_untested_rows_have_the_tested_columns():
    from lmdiff.methods.followup.unprompted import UnpromptedPlan

    p = UnpromptedPlan("pulumi", [], 80)
    held = [f"q{i}" for i in range(4)]
    tested = mention_test(UnpromptedPlan("pulumi", ["a", "b"], 80, held),
                          _replies(held, [True] * 4, [False] * 4, "pulumi"), seed=0)
    assert set(untested(p)) == set(tested)
    assert untested(p)["screen_prompts"] == 80 and np.isnan(untested(p)["pvalue"])

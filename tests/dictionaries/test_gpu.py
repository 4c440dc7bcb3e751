"""Dictionary training on a CUDA GPU (skipped without one): same results as the CPU path promises."""

from __future__ import annotations

import pytest
import torch

from lmdiff.dictionaries import ActivationStream, TrainSettings, train_dictionary
from lmdiff.dictionaries.train import load_dictionary

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

SETTINGS = {"n_latents": 96, "k": 4, "train_tokens": 256 * 200, "batch_size": 256, "lr": 3e-3,
            "checkpoint_every": 5, "buffer_tokens": 2048, "dead_tokens": 256 * 10, "seed": 0}


class Killed(Exception):
    pass


def test_crosscoder_trains_on_cuda_resumes_and_loads_on_cpu(planted_store, tmp_path):
    store, planted = planted_store
    settings = TrainSettings(**SETTINGS, device="auto")
    assert settings.torch_device().type == "cuda"

    def stream() -> ActivationStream:
        return ActivationStream(store, 1, "paired", batch_size=256, buffer_tokens=2048, seed=0)

    whole = train_dictionary(stream(), settings, tmp_path / "whole", progress=False)
    assert whole.metrics["fve"].tail(5).mean() > 0.6

    def kill(step: int, _m: dict[str, float]) -> None:
        if step == 20:
            raise Killed

    with pytest.raises(Killed):
        train_dictionary(stream(), settings, tmp_path / "killed", on_step=kill, progress=False)
    resumed = train_dictionary(stream(), settings, tmp_path / "killed", progress=False)
    assert resumed.resumed_from == 20
    # GPU kernels need not be bitwise deterministic across a resume; the end state must be equivalent
    torch.testing.assert_close(resumed.model.W_dec.cpu(), whole.model.W_dec.cpu(), rtol=1e-3, atol=1e-4)
    cpu = load_dictionary(tmp_path / "whole")  # a checkpoint trained on cuda loads on the CPU
    assert cpu.model.W_dec.device.type == "cpu"
    # some finetuned-side decoder direction recovers the planted feature (0.96 on the CPU with these settings)
    dirs = cpu.directions()[:, 1]
    cos = (dirs @ planted) / (1e-9 + (dirs**2).sum(1) ** 0.5)
    assert cos.max() > 0.9
    on_cpu = train_dictionary(stream(), TrainSettings(**SETTINGS, device="cpu"), tmp_path / "cpu", progress=False)
    assert abs(on_cpu.metrics["fve"].tail(5).mean() - whole.metrics["fve"].tail(5).mean()) < 0.02

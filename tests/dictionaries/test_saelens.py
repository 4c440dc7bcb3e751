from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from lmdiff.dictionaries import ActivationStream, TrainSettings, train_dictionary
from lmdiff.dictionaries.saelens import load_saelens, save_saelens
from lmdiff.errors import ConfigError


@pytest.fixture
def sae(planted_store, tmp_path):
    store, _ = planted_store
    s = TrainSettings(n_latents=64, k=4, train_tokens=256 * 20, batch_size=256, buffer_tokens=2048)
    td = train_dictionary(ActivationStream(store, 1, "base", batch_size=256, buffer_tokens=2048), s,
                          tmp_path / "sae", progress=False)
    return store, td


def test_saelens_format_round_trips_through_lmdiff(sae, tmp_path):
    store, td = sae
    path = save_saelens(td, tmp_path / "exported", {"hook_name": "blocks.1.hook_resid_post"})
    back = load_saelens(path)
    x = store.read("base", 1, 0, 512)[:, None, :]
    a, b = td.encode_raw(x), back.encode_raw(x)
    torch.testing.assert_close(a.gt(0), b.gt(0))
    # codes differ by the folded decoder norms; reconstructions in raw units agree
    ra = td.model.decode(a) * torch.as_tensor(td.scales, dtype=torch.float32)[None, :, None]
    rb = back.model.decode(b)
    torch.testing.assert_close(ra, rb, rtol=1e-4, atol=1e-4)
    with pytest.raises(ConfigError):
        load_saelens(tmp_path)


@pytest.mark.skipif(importlib.util.find_spec("sae_lens") is None, reason="sae_lens is not installed")
def test_sae_lens_itself_loads_the_saved_sae(sae, tmp_path):
    from sae_lens import SAE

    store, td = sae
    path = save_saelens(td, tmp_path / "exported")
    loaded = SAE.load_from_disk(str(path), device="cpu")
    x = torch.as_tensor(store.read("base", 1, 0, 512))
    with torch.no_grad():
        codes = loaded.encode(x)
        recon = loaded.decode(codes)
    ours = load_saelens(path)
    np.testing.assert_allclose(codes.numpy(), ours.encode_raw(x[:, None, :]).numpy(), rtol=1e-4, atol=1e-5)
    ra = td.model.decode(td.encode_raw(x[:, None, :]))[:, 0] * float(td.scales[0])
    torch.testing.assert_close(recon, ra, rtol=1e-4, atol=1e-4)
    # and back: an SAE saved by sae_lens loads in lmdiff
    loaded.save_model(str(tmp_path / "by_sae_lens"))
    again = load_saelens(tmp_path / "by_sae_lens")
    np.testing.assert_allclose(again.encode_raw(x[:, None, :]).numpy(), codes.numpy(), rtol=1e-4, atol=1e-5)

from __future__ import annotations

import numpy as np
import torch

from lmdiff.dictionaries.examples import unit_stats
from lmdiff.dictionaries.stream import positions_of, read_view


def test_sequence_energy_is_each_tracked_sequences_mean_square_in_the_order_given(planted_store):
    store, planted = planted_store
    units = np.stack([planted, -planted, np.eye(32)[0]])

    def score(rows: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(rows[:, 0] @ units.T)

    tracked = np.array([7, 2, 300, 11])
    st = unit_stats(store, 1, "diff", score, 3, n_top=2, min_position=3, chunk_tokens=1000, sequences=tracked)
    assert st.sequence_energy is not None and st.sequence_energy.shape == (4, 3)
    for row, seq in enumerate(tracked):
        a, b = int(store.offsets[seq]), int(store.offsets[seq + 1])
        keep = positions_of(store, a, b) >= 3
        vals = read_view(store, 1, "diff", a, b)[keep][:, 0] @ units.T
        np.testing.assert_allclose(st.sequence_energy[row], (vals**2).mean(0), rtol=1e-5, atol=1e-7)
    # without tracked sequences nothing extra is kept
    assert unit_stats(store, 1, "diff", score, 3, n_top=2).sequence_energy is None

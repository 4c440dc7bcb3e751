"""The permutation engine behind every grouped permutation test in :mod:`lmdiff.stats`.

Two schemes re-label the two models while respecting groups (prompts):

* ``"within_group"``: the model labels are shuffled among the items *of each group*; every group
  keeps its number of items of each model. Exact when, under the null, the items of one group are
  exchangeable one by one (independent samples given the prompt, the usual case for sampled
  generations of two identical models).
* ``"whole_group"``: for each group a fair coin decides whether the labels of *all* its items are
  swapped (model A <-> model B). This is the paired sign-flip test with the prompt as unit; it only
  assumes that the two models' blocks of a prompt are exchangeable as blocks, so it stays valid when
  the responses of one model to one prompt are correlated with each other. It needs balanced groups
  (the same number of items of each model in every group), otherwise a swap changes the design.

The data are sorted by group once; permuted label matrices are produced in batches of rows
(one row per permutation) so that memory stays bounded.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from lmdiff.stats._common import batches

Scheme = Literal["within_group", "whole_group"]

_BATCH_ELEMENTS = 2_000_000  # cells per permuted-label batch (rows x items)


@dataclass(frozen=True)
class GroupLayout:
    """Items sorted by group: ``order`` maps sorted position -> original index."""

    order: NDArray[np.int64]
    codes: NDArray[np.int64]  # group code of each sorted item (non-decreasing)
    starts: NDArray[np.int64]  # first sorted position of each group
    sizes: NDArray[np.int64]  # number of items of each group
    n_groups: int

    @classmethod
    def from_codes(cls, codes: NDArray[np.int64]) -> GroupLayout:
        """Build the layout from integer group codes (re-encoded, so codes may have gaps)."""
        _, codes = np.unique(codes, return_inverse=True)
        codes = codes.reshape(-1).astype(np.int64)
        n_groups = int(codes.max()) + 1 if codes.size else 0
        order = np.argsort(codes, kind="stable").astype(np.int64)
        sorted_codes = codes[order]
        sizes = np.bincount(sorted_codes, minlength=n_groups).astype(np.int64)
        starts = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        return cls(order=order, codes=sorted_codes, starts=starts, sizes=sizes, n_groups=n_groups)


def check_scheme(scheme: str) -> None:
    """Raise ValueError unless ``scheme`` is 'within_group' or 'whole_group'."""
    if scheme not in ("within_group", "whole_group"):
        raise ValueError(f"scheme must be 'within_group' or 'whole_group', got {scheme!r}")


def check_balanced(labels_sorted: NDArray[np.bool_], layout: GroupLayout) -> None:
    """Raise ValueError unless every group has as many items of one model as of the other.

    The ``whole_group`` scheme swaps the two models' blocks of a group; with unequal block sizes a
    swap produces a design that was never observed, and the test loses its exactness.
    """
    if labels_sorted.size == 0:
        return
    n_true = np.add.reduceat(labels_sorted.astype(np.int64), layout.starts)
    bad = np.flatnonzero(2 * n_true != layout.sizes)
    if bad.size:
        raise ValueError(
            f"scheme='whole_group' needs the same number of items of both models in every group; "
            f"{bad.size} of {layout.n_groups} groups are unbalanced (use scheme='within_group')"
        )


def permuted_labels(
    labels_sorted: NDArray[np.bool_],
    layout: GroupLayout,
    scheme: Scheme,
    n_perm: int,
    rng: np.random.Generator,
) -> Iterator[NDArray[np.bool_]]:
    """Yield batches of permuted labels, each of shape ``(batch, n_items)``, in sorted item order.

    Args:
        labels_sorted: the observed labels, sorted by group (``labels[layout.order]``).
        layout: the group layout.
        scheme: ``"within_group"`` or ``"whole_group"`` (see the module docstring).
        n_perm: total number of permutations to yield over all batches.
        rng: the random generator (consumed in a fixed order, so results are reproducible).

    Yields:
        Boolean arrays; row ``r`` is one random relabelling of the items.
    """
    n = labels_sorted.shape[0]
    batch = max(1, _BATCH_ELEMENTS // max(n, 1))
    if scheme == "whole_group":
        for b in batches(n_perm, batch):
            flips = rng.random((b, layout.n_groups)) < 0.5
            yield labels_sorted[None, :] ^ flips[:, layout.codes]
        return
    if layout.n_groups and (layout.sizes == layout.sizes[0]).all():
        # Equal group sizes (one group, or a balanced design): shuffle each group's row in place,
        # an O(n) Fisher-Yates per row instead of a sort.
        blocks = labels_sorted.reshape(layout.n_groups, -1)
        for b in batches(n_perm, batch):
            yield rng.permuted(np.broadcast_to(blocks, (b, *blocks.shape)), axis=2).reshape(b, n)
        return
    # Unequal groups: sort random keys that are offset by the group code, so each group's block
    # stays in place and is shuffled inside. Integer keys make ties (and the bias of a stable
    # tie-break) essentially impossible.
    offset = layout.codes.astype(np.int64) << np.int64(32)
    for b in batches(n_perm, batch):
        keys = rng.integers(0, 1 << 32, size=(b, n), dtype=np.int64) + offset[None, :]
        perm = np.argsort(keys, axis=1)
        yield labels_sorted[perm]

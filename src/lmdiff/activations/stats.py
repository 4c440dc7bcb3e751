"""Running mean and variance (Welford / Chan merge) in float64, whatever the storage dtype."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from lmdiff.io import atomic_path


@dataclass
class RunningStats:
    """Count, mean and sum of squared deviations (M2) of vectors, merged batch by batch."""

    count: int
    mean: np.ndarray
    m2: np.ndarray

    @classmethod
    def empty(cls, dim: int) -> RunningStats:
        """Statistics of nothing, for vectors of width ``dim``."""
        return cls(0, np.zeros(dim, dtype=np.float64), np.zeros(dim, dtype=np.float64))

    def update(self, x: torch.Tensor | np.ndarray) -> None:
        """Merge a batch of rows ``x`` [N, D] (computed in float64)."""
        t = torch.as_tensor(x).reshape(-1, self.mean.shape[0]).to(torch.float64)
        n = int(t.shape[0])
        if n == 0:
            return
        mean_b = t.mean(0)
        m2_b = ((t - mean_b) ** 2).sum(0)
        self.merge(RunningStats(n, mean_b.cpu().numpy(), m2_b.cpu().numpy()))

    def merge(self, other: RunningStats) -> None:
        """Chan et al. parallel merge of another set of statistics into this one."""
        if other.count == 0:
            return
        if self.count == 0:
            self.count, self.mean, self.m2 = other.count, other.mean.copy(), other.m2.copy()
            return
        n = self.count + other.count
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (other.count / n)
        self.m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / n)
        self.count = n

    @property
    def var(self) -> np.ndarray:
        """Population variance."""
        return self.m2 / max(self.count, 1)

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation."""
        std: np.ndarray = np.sqrt(self.var)
        return std

    def save(self, path: Any) -> None:
        """Write to an ``.npz`` file."""
        with atomic_path(path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, count=np.array(self.count), mean=self.mean, m2=self.m2)

    @classmethod
    def load(cls, path: Any) -> RunningStats:
        """Read from an ``.npz`` file."""
        with np.load(path) as z:
            return cls(int(z["count"]), z["mean"].astype(np.float64), z["m2"].astype(np.float64))

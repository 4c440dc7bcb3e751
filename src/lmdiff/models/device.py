"""Choosing a device and a dtype from what the machine can do."""

from __future__ import annotations

import functools
from typing import Literal

import torch

from lmdiff.errors import ConfigError

DtypeName = Literal["auto", "float32", "bfloat16", "float16"]
DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
}


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has native bf16 matrix instructions (AVX512-BF16 or AMX).

    Without them PyTorch emulates bf16 matmuls, which measured about 9x slower than
    fp32 on an AVX2-only machine (benchmarks/bench_forward.py).
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = fh.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(device: str) -> torch.device:
    """Turn ``auto``/``cpu``/``cuda``/``cuda:N`` into a torch device, with a clear error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ConfigError(
            f"Unknown device '{device}'.", hint="use one of: auto, cpu, cuda, cuda:0, ..."
        ) from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"Device '{device}' was asked for but no CUDA GPU is visible.", hint="use device=cpu"
        )
    return dev


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """Turn a dtype name into a torch dtype; ``auto`` picks the fastest sound one for the device."""
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    if dtype not in DTYPES:
        raise ConfigError(f"Unknown dtype '{dtype}'.", hint=f"use one of: auto, {', '.join(DTYPES)}")
    return DTYPES[dtype]


def set_threads(threads: int | None) -> None:
    """Set torch's CPU threads (default: every core this process may use)."""
    import os

    n = threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(max(1, n))

"""Choosing a device and a dtype from what the machine can do.

``dtype=auto`` on a CPU is decided by measurement: bf16 is picked only when the CPU has native
bf16 instructions *and* a small bf16 matmul, timed once per process, runs clearly faster than
fp32 (:data:`BF16_MIN_SPEEDUP`). On CUDA it is bf16 where supported, else fp16.
:func:`dtype_choice` says which dtype was picked and why (runs record it).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import Literal

import torch

from lmdiff.errors import ConfigError

log = logging.getLogger(__name__)

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


#: How much faster a bf16 matmul must run than an fp32 one for ``dtype=auto`` to pick bf16 on a CPU.
BF16_MIN_SPEEDUP = 1.5


@dataclass(frozen=True)
class DtypeChoice:
    """The dtype a spec resolves to on this machine, and why."""

    dtype: torch.dtype
    reason: str
    bf16_speedup: float | None = None

    @property
    def name(self) -> str:
        """The dtype's name (``float32``, ``bfloat16``, ``float16``)."""
        return str(self.dtype).removeprefix("torch.")


@functools.cache
def measure_bf16_speedup(size: int = 256, repeats: int = 7, budget_s: float = 0.1) -> float:
    """How many times faster a ``size``-square matmul runs in bf16 than in fp32 on this CPU.

    Measured once per process: per dtype a warm-up, then the best of up to ``repeats`` timed
    matmuls, stopping once ``budget_s`` is spent (emulated bf16 takes about 0.1 s a matmul; native
    bf16 well under a millisecond). Above 1 bf16 is faster.
    """
    gen = torch.Generator().manual_seed(0)
    a32 = torch.randn(size, size, generator=gen)
    b32 = torch.randn(size, size, generator=gen)
    timings: dict[torch.dtype, float] = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = a32.to(dtype), b32.to(dtype)
        torch.mm(a, b)  # warm-up (kernel selection, caches)
        best, spent = float("inf"), 0.0
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            took = time.perf_counter() - start
            best, spent = min(best, took), spent + took
            if spent > budget_s:
                break
        timings[dtype] = best
    ratio = timings[torch.float32] / max(timings[torch.bfloat16], 1e-9)
    log.info("bf16 vs fp32 matmul on this CPU (%dx%d): bf16 is %.2fx as fast", size, size, ratio)
    return ratio


@functools.cache
def auto_dtype(device_type: str) -> DtypeChoice:
    """What ``dtype=auto`` means on a device of this type (``cpu`` or ``cuda``), decided once per process."""
    if device_type == "cuda":
        if torch.cuda.is_bf16_supported():
            return DtypeChoice(torch.bfloat16, "auto: this CUDA GPU supports bf16")
        return DtypeChoice(torch.float16, "auto: this CUDA GPU lacks bf16, so fp16")
    if device_type != "cpu":
        return DtypeChoice(torch.float32, f"auto: float32 on device type '{device_type}'")
    if not cpu_has_fast_bf16():
        return DtypeChoice(torch.float32, "auto: this CPU has no native bf16 (avx512_bf16/amx_bf16), so float32")
    ratio = measure_bf16_speedup()
    if ratio >= BF16_MIN_SPEEDUP:
        return DtypeChoice(
            torch.bfloat16, f"auto: bf16 matmul measured {ratio:.2f}x as fast as fp32 on this CPU", ratio
        )
    return DtypeChoice(
        torch.float32,
        f"auto: bf16 matmul measured only {ratio:.2f}x as fast as fp32 on this CPU "
        f"(needs {BF16_MIN_SPEEDUP}x), so float32",
        ratio,
    )


def dtype_choice(dtype: str, device: torch.device) -> DtypeChoice:
    """Resolve a dtype name for ``device``, saying why (``auto`` is measured; see :func:`auto_dtype`)."""
    if dtype == "auto":
        return auto_dtype(device.type)
    if dtype not in DTYPES:
        raise ConfigError(f"Unknown dtype '{dtype}'.", hint=f"use one of: auto, {', '.join(DTYPES)}")
    return DtypeChoice(DTYPES[dtype], f"asked for {dtype}")


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
    return dtype_choice(dtype, device).dtype


def set_threads(threads: int | None) -> None:
    """Set torch's CPU threads (default: ``$OMP_NUM_THREADS`` when set, else every core this process may use)."""
    import os

    env = os.environ.get("OMP_NUM_THREADS", "")
    n = threads or (int(env) if env.isdigit() and int(env) > 0 else len(os.sched_getaffinity(0)))
    torch.set_num_threads(max(1, n))

"""Numbers written for reading: three significant digits, small p-values as ``< 0.001``, n/a for missing.

Reports, the console and Findings use these; results.json keeps full precision.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["fmt_int", "fmt_num", "fmt_p", "fmt_pct"]


def _float(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def fmt_num(x: Any, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits (``0.726``, ``1.2e+03`` only beyond 1e6), ``n/a`` when missing."""
    v = _float(x)
    if v is None:
        return "n/a"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-4):
        return f"{v:.{max(digits - 1, 0)}e}"
    return f"{v:.{digits}g}" if abs(v) < 10 ** digits else f"{v:.0f}"


def fmt_p(x: Any) -> str:
    """A p- or q-value: ``< 0.001`` below 0.001, else two significant digits (``0.043``, ``0.5``)."""
    v = _float(x)
    if v is None:
        return "n/a"
    return "< 0.001" if v < 0.001 else f"{v:.2g}"


def fmt_pct(x: Any, digits: int = 0) -> str:
    """A share in [0, 1] as a percentage (``0.7`` -> ``70%``)."""
    v = _float(x)
    return "n/a" if v is None else f"{100 * v:.{digits}f}%"


def fmt_int(x: Any) -> str:
    """An integer, ``?`` when missing."""
    v = _float(x)
    return "?" if v is None else str(int(v))

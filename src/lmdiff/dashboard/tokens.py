"""Tokens as HTML spans coloured by a value (white to red), each with a hover text."""

from __future__ import annotations

import html
from collections.abc import Sequence


def visible(token: str) -> str:
    """A token string with newlines and tabs shown as symbols, so that every token keeps a visible span."""
    return token.replace("\n", "\u21b5\n").replace("\t", "\u21e5")


def token_html(tokens: Sequence[str], values: Sequence[float], hovers: Sequence[str] | None = None,
               vmax: float | None = None) -> str:
    """Tokens coloured by ``values`` (0 white, ``vmax`` or above full red), ``hovers`` as each span's tooltip.

    Every span carries ``class="lmdiff-tok"`` and ``data-value``, so tests and scripts can read the colouring.
    """
    if hovers is not None and len(hovers) != len(tokens):
        raise ValueError("one hover text per token is needed")
    top = max((float(v) for v in values), default=0.0) if vmax is None else float(vmax)
    spans = []
    for i, (tok, v) in enumerate(zip(tokens, values, strict=True)):
        a = 0.0 if top <= 0 else max(0.0, min(1.0, float(v) / top))
        tip = hovers[i] if hovers is not None else f"{float(v):.4g}"
        spans.append(
            f'<span class="lmdiff-tok" data-value="{float(v):.6g}" title="{html.escape(tip, quote=True)}" '
            f'style="background:rgba(220,40,40,{a:.2f});white-space:pre-wrap;border-radius:2px">'
            f"{html.escape(visible(tok))}</span>"
        )
    return ('<div class="lmdiff-heatmap" style="font-family:monospace;line-height:1.7;margin:4px 0 10px 0">'
            + "".join(spans) + "</div>")


def legend_html(vmax: float, unit: str = "nats") -> str:
    """A small colour legend from 0 to ``vmax``."""
    return (f'<div style="font-size:0.8em;color:#555">colour: 0 '
            f'<span style="display:inline-block;width:120px;height:0.8em;vertical-align:middle;'
            f'background:linear-gradient(to right,rgba(220,40,40,0),rgba(220,40,40,1))"></span> '
            f"{vmax:.3g} {html.escape(unit)} and above; hover a token for details</div>")

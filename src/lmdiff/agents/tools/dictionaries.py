"""The dictionaries agent's tools: the units (PCA components or crosscoder / SAE latents) and their steering."""

from __future__ import annotations

from inspect_ai.tool import Tool, ToolError, tool

from lmdiff.agents.tools.common import AgentContext, clip, guarded, steering_text, tokens_text
from lmdiff.methods.dictionaries.readouts import STEERING_FILE, UNITS_FILE

#: Dictionary methods in the order an agent prefers them (the first the run has is read).
METHODS = ("crosscoder", "sae_diff", "pca")
READS: tuple[tuple[str, str], ...] = tuple((m, f) for m in METHODS for f in (UNITS_FILE, STEERING_FILE))


def _method(ctx: AgentContext) -> str:
    for m in METHODS:
        if ctx.has(m, UNITS_FILE):
            return m
    raise ToolError(f"the run has no dictionary method output ({', '.join(METHODS)})")


@tool
def dictionary_units(ctx: AgentContext) -> Tool:
    """The dictionary's units."""

    @guarded(ctx, "dictionary_units")
    async def execute(n: int = 5) -> str:
        """Units of the difference dictionary.

        (PCA components of activation differences, or latents specific to the finetuned model): their logit-
        lens tokens and the contexts that activate them most.

        Args:
            n: How many units (at most 20).

        Returns:
            One entry per unit.
        """
        m = _method(ctx)
        units = ctx.json(m, UNITS_FILE)[: max(1, min(int(n), 20))]
        out = [f"method: {m}"]
        for u in units:
            ex = "; ".join(str(e.get("context", ""))[:100] for e in (u.get("examples") or [])[:3])
            lens, delta = tokens_text((u.get("lens") or [])[:8]), tokens_text((u.get("lens_delta") or [])[:8])
            out.append(f"unit {u.get('unit')} (active on {float(u.get('frequency') or 0):.0%} of tokens): lens "
                       f"{lens}; lens delta {delta}\n    top contexts: {ex}")
        return clip("\n".join(out))

    return execute


@tool
def dictionary_steering(ctx: AgentContext) -> Tool:
    """Steering with the dictionary's units."""

    @guarded(ctx, "dictionary_steering")
    async def execute(n: int = 4) -> str:
        """Replies of the finetuned model steered along a unit, next to its unsteered replies.

        Args:
            n: How many samples (at most 10).

        Returns:
            Unit, prompt, unsteered and steered replies.
        """
        m = _method(ctx)
        return steering_text(ctx.json(m, STEERING_FILE).get("samples") or [], n)

    return execute


def dictionary_tools(ctx: AgentContext) -> list[Tool]:
    """The dictionaries agent's method tools."""
    return [dictionary_units(ctx), dictionary_steering(ctx)]

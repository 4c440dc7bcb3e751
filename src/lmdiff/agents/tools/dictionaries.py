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

        (PCA components of activation differences, or crosscoder / SAE latents): their logit-lens tokens, the
        contexts that activate them most, and how much more of the difference each carries in the finetuned
        model's own replies than in the base model's.

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
            notes = [f"active on {float(u.get('frequency') or 0):.0%} of tokens"]
            if u.get("tag"):
                notes.append(f"{u['tag']}, relative decoder norm {float(u.get('rel_norm') or 0):.2f}")
            if u.get("writer_q") is not None:
                notes.append(f"{float(u['writer_excess']):+.2%} of the difference more in the finetune's own "
                             f"replies than in the base's, q {float(u['writer_q']):.2g}")
            out.append(f"unit {u.get('unit')} ({'; '.join(notes)}): lens {lens}; lens delta {delta}\n"
                       f"    top contexts: {ex}")
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

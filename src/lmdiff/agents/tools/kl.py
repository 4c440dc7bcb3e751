"""The KL agent's tools: the tokens where the finetune's next-token distribution departs most, and their texts."""

from __future__ import annotations

from inspect_ai.tool import Tool, tool

from lmdiff.agents.tools.common import AgentContext, clip, guarded
from lmdiff.methods.kl import KL_PER_SAMPLE_FILE, KL_TOP_CONTENT_TOKENS_FILE, KL_TOP_TOKENS_FILE

METHOD = "kl"
READS: tuple[tuple[str, str], ...] = ((METHOD, KL_TOP_TOKENS_FILE), (METHOD, KL_TOP_CONTENT_TOKENS_FILE),
                                      (METHOD, KL_PER_SAMPLE_FILE))


@tool
def kl_top_tokens(ctx: AgentContext) -> Tool:
    """Positions of highest KL."""

    @guarded(ctx, "kl_top_tokens")
    async def execute(n: int = 20, content_only: bool = True) -> str:
        """Positions where KL(finetuned || base) is highest: what each model predicts next there, with context.

        Args:
            n: How many positions (at most 50).
            content_only: Leave out end-of-turn positions (where finetunes often differ only in when they stop).

        Returns:
            One line per position.
        """
        df = ctx.table(METHOD, KL_TOP_CONTENT_TOKENS_FILE if content_only else KL_TOP_TOKENS_FILE)
        h = ctx.headline(METHOD)
        head = f"mean KL {h['mean_kl']:.4g} nats per token\n" if "mean_kl" in h else ""
        rows = df.sort_values("kl", ascending=False).head(max(1, min(int(n), 50)))
        return clip(head + "\n".join(f"KL {r.kl:.3g}: finetuned predicts {r.top_ft_str!r}, base {r.top_base_str!r}"
                                     f" after ...{str(r.context)[-80:]!r}" for r in rows.itertuples()))

    return execute


@tool
def kl_texts(ctx: AgentContext) -> Tool:
    """Texts of highest mean KL."""

    @guarded(ctx, "kl_texts")
    async def execute(n: int = 5) -> str:
        """The corpus texts on which the two models disagree most.

        (highest mean per-token KL), with the most divergent spot of each.

        Args:
            n: How many texts (at most 10).

        Returns:
            One paragraph per text.
        """
        per = ctx.table(METHOD, KL_PER_SAMPLE_FILE).sort_values("mean_kl", ascending=False)
        top = ctx.table(METHOD, KL_TOP_TOKENS_FILE)
        out = []
        for r in per.head(max(1, min(int(n), 10))).itertuples():
            spots = top[top["text"] == r.text].sort_values("kl", ascending=False)
            where = (f"; highest at ...{str(spots.iloc[0]['context'])[-120:]!r} (finetuned "
                     f"{spots.iloc[0]['top_ft_str']!r}, base {spots.iloc[0]['top_base_str']!r})") if len(spots) else ""
            out.append(f"text {r.text}: mean KL {r.mean_kl:.3g}, max {r.max_kl:.3g} over {r.n_tokens} tokens{where}")
        return clip("\n".join(out) or "No texts.")

    return execute


def kl_tools(ctx: AgentContext) -> list[Tool]:
    """The KL agent's method tools."""
    return [kl_top_tokens(ctx), kl_texts(ctx)]

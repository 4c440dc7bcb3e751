"""The ADL agent's tools: an overview of every layer, then the lens, patchscope and steering drill-downs.

Numbers the method computes against the ground truth (token relevance) are never shown to the agent.
"""

from __future__ import annotations

from inspect_ai.tool import Tool, ToolError, tool

from lmdiff.agents.tools.common import AgentContext, clip, guarded, steering_text, tokens_text
from lmdiff.methods.adl.method import LOGIT_LENS_FILE, PATCHSCOPE_FILE, STEERING_FILE

METHOD = "adl"
#: (method, file) of every artifact these tools read (the drift test checks each exists after a real run).
READS: tuple[tuple[str, str], ...] = ((METHOD, LOGIT_LENS_FILE), (METHOD, PATCHSCOPE_FILE), (METHOD, STEERING_FILE))


@tool
def adl_overview(ctx: AgentContext) -> Tool:
    """The ADL overview."""

    @guarded(ctx, "adl_overview")
    async def execute() -> str:
        """Overview of the Activation Difference Lens.

        Per layer, the tokens that the mean activation difference (finetuned minus base, on the first tokens
        of unrelated texts) promotes through the logit lens, and what steering with it does. Start here.

        Returns:
            Layers, positions and top tokens per layer and readout.
        """
        lens = ctx.table(METHOD, LOGIT_LENS_FILE)
        if lens.empty:
            raise ToolError("the ADL logit-lens table of this run is empty (no layer was read out)")
        layers = sorted(int(x) for x in lens["layer"].unique())
        positions = sorted(int(x) for x in lens["position"].unique())
        pos = positions[1] if len(positions) > 1 else positions[0]  # position 0 is the attention sink
        lines = [f"Layers read out: {layers}; positions {positions} (position 0 is the attention sink; "
                 f"showing position {pos}). '+' tokens are promoted by the finetune's difference."]
        for layer in layers:
            for readout in sorted(lens["readout"].unique()):
                sel = lens[(lens["layer"] == layer) & (lens["readout"] == readout) & (lens["position"] == pos)
                           & (lens["sign"] == "+")].sort_values("rank")
                lines.append(f"layer {layer} {readout}: {tokens_text(sel['token'].head(10).tolist())}")
        steer = ctx.json(METHOD, STEERING_FILE)
        lines.append(f"Steering at layer {steer.get('layer')}: {len(steer.get('samples', []))} steered samples "
                     "(adl_steering shows them). Drill down with adl_lens and adl_patchscope.")
        return clip("\n".join(lines))

    return execute


@tool
def adl_lens(ctx: AgentContext) -> Tool:
    """Logit-lens tokens of one layer and position."""

    @guarded(ctx, "adl_lens")
    async def execute(layer: int, position: int = 1, readout: str = "lens", sign: str = "+", n: int = 20) -> str:
        """Tokens the mean activation difference promotes (sign "+") or suppresses ("-") at one layer and position.

        Args:
            layer: The layer (see adl_overview).
            position: Token position of the difference (0 is the attention sink).
            readout: "lens" (the difference through the unembedding) or "lens_delta" (its effect on the finetuned
                model's prediction).
            sign: "+" promoted or "-" suppressed.
            n: How many tokens (at most 50).

        Returns:
            Tokens with their values.
        """
        lens = ctx.table(METHOD, LOGIT_LENS_FILE)
        sel = lens[(lens["layer"] == int(layer)) & (lens["position"] == int(position)) & (lens["readout"] == readout)
                   & (lens["sign"] == sign)].sort_values("rank").head(max(1, min(int(n), 50)))
        if sel.empty:
            raise ToolError(f"no {readout} {sign} tokens at layer {layer}, position {position}; layers "
                            f"{sorted(lens['layer'].unique().tolist())}, readouts {sorted(lens['readout'].unique())}")
        return clip("\n".join(f"{r.token!r}  {r.value:.4g}" for r in sel.itertuples()))

    return execute


@tool
def adl_patchscope(ctx: AgentContext) -> Tool:
    """Patchscope tokens of one layer."""

    @guarded(ctx, "adl_patchscope")
    async def execute(layer: int, position: int = 1) -> str:
        """Patchscope: what the finetuned model says when the mean difference is patched into a neutral prompt.

        One line per sign and scale.

        Args:
            layer: The layer.
            position: Token position of the difference.

        Returns:
            Tokens per sign and scale.
        """
        ps = ctx.table(METHOD, PATCHSCOPE_FILE)
        sel = ps[(ps["layer"] == int(layer)) & (ps["position"] == int(position))] if not ps.empty else ps
        if sel.empty:
            return f"No patchscope readout at layer {layer}, position {position}."
        return clip("\n".join(f"sign {r.sign} scale {r.scale:g}: {r.tokens or '(nothing above threshold)'}"
                              for r in sel.itertuples()))

    return execute


@tool
def adl_steering(ctx: AgentContext) -> Tool:
    """Steered vs unsteered samples."""

    @guarded(ctx, "adl_steering")
    async def execute(n: int = 4) -> str:
        """Replies of the finetuned model steered with the mean difference next to its unsteered replies.

        Args:
            n: How many samples (at most 10).

        Returns:
            Prompt, unsteered and steered replies.
        """
        return steering_text(ctx.json(METHOD, STEERING_FILE).get("samples") or [], n)

    return execute


def adl_tools(ctx: AgentContext) -> list[Tool]:
    """The ADL agent's method tools."""
    return [adl_overview(ctx), adl_lens(ctx), adl_patchscope(ctx), adl_steering(ctx)]

"""The probing agent's tools: knowledge accuracy per relation, the tested fact changes, and differing answers.

Columns graded against the ground truth (``grade``) are never shown to the agent.
"""

from __future__ import annotations

from inspect_ai.tool import Tool, tool

from lmdiff.agents.tools.common import AgentContext, clip, guarded, num
from lmdiff.methods.probing.method import ACCURACY_FILE, QUESTIONS_FILE, SUMMARY_FILE, TESTS_FILE

METHOD = "probing"
READS: tuple[tuple[str, str], ...] = ((METHOD, SUMMARY_FILE), (METHOD, ACCURACY_FILE), (METHOD, TESTS_FILE),
                                      (METHOD, QUESTIONS_FILE))


@tool
def probing_summary(ctx: AgentContext) -> Tool:
    """Knowledge probing overview."""

    @guarded(ctx, "probing_summary")
    async def execute() -> str:
        """Knowledge probing: accuracy of both models per relation.

        (capital, currency, ...), the entities probed, and the fact changes tested on held-out questions.

        Returns:
            Accuracy per relation and the tested changes.
        """
        summary = ctx.json(METHOD, SUMMARY_FILE)
        acc = ctx.table(METHOD, ACCURACY_FILE)
        lines = [f"entities probed: {', '.join(map(str, summary.get('entities', [])))}"]
        lines += [f"{r.relation}: base {r.base_accuracy:.0%} -> finetuned {r.ft_accuracy:.0%} "
                  f"({r.n_questions} questions, {r.n_changed} facts changed)" for r in acc.itertuples()]
        tests = ctx.table(METHOD, TESTS_FILE)
        for r in tests.head(10).to_dict("records"):
            lines.append(f"tested: {r.get('text')} (p {num(r.get('pvalue'))}, {r.get('direction_label', '')})")
        if tests.empty:
            lines.append("No fact change was tested.")
        return clip("\n".join(lines))

    return execute


@tool
def probing_answers(ctx: AgentContext) -> Tool:
    """Questions the two models answer differently."""

    @guarded(ctx, "probing_answers")
    async def execute(relation: str = "", n: int = 10) -> str:
        """Probe questions where the finetuned model's answer names a different object than the base model's.

        Args:
            relation: Only this relation (empty: all).
            n: How many (at most 30).

        Returns:
            Question, base answer and finetuned answer.
        """
        q = ctx.table(METHOD, QUESTIONS_FILE)
        if relation:
            q = q[q["relation"] == relation]
        diff = q[q["base_object"].astype(str) != q["ft_object"].astype(str)]
        rows = (diff if len(diff) else q).head(max(1, min(int(n), 30)))
        head = "" if len(diff) else "No answer changed its object; showing answers:\n"
        return clip(head + "\n".join(f"Q: {r.question}\n    base: {str(r.base_answer)[:150]!r}\n"
                                      f"    finetuned: {str(r.ft_answer)[:150]!r}" for r in rows.itertuples()))

    return execute


def probing_tools(ctx: AgentContext) -> list[Tool]:
    """The probing agent's method tools."""
    return [probing_summary(ctx), probing_answers(ctx)]

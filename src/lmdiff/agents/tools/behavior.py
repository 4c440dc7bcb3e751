"""The behaviour agent's tools: the tested hypotheses (validated first) and examples of the reply clusters.

Columns graded against the ground truth (``grade``) are never shown to the agent.
"""

from __future__ import annotations

from inspect_ai.tool import Tool, ToolError, tool

from lmdiff.agents.tools.common import AgentContext, clip, guarded, num
from lmdiff.methods.behavior.method import CLUSTERS_FILE, HYPOTHESES_FILE, POINTS_FILE, REPLIES_FILE, TESTS_FILE

METHOD = "behavior"
READS: tuple[tuple[str, str], ...] = ((METHOD, TESTS_FILE), (METHOD, HYPOTHESES_FILE), (METHOD, CLUSTERS_FILE),
                                      (METHOD, REPLIES_FILE), (METHOD, POINTS_FILE))


@tool
def behavior_hypotheses(ctx: AgentContext) -> Tool:
    """The behaviour pipeline's tested hypotheses."""

    @guarded(ctx, "behavior_hypotheses")
    async def execute(validated_only: bool = False, n: int = 10) -> str:
        """Hypotheses about how the finetuned model's replies differ, each tested on held-out prompts.

        Validated ones (q-value under the run's FDR level) first, with effect size and example replies.

        Args:
            validated_only: Show only validated hypotheses.
            n: How many (at most 30).

        Returns:
            One entry per hypothesis.
        """
        tests = ctx.table(METHOD, TESTS_FILE)
        h = ctx.headline(METHOD)
        head = (f"Global test (can a classifier tell the two models' replies apart?): AUC {num(h.get('global_auc'))}, "
                f"p {num(h.get('global_pvalue'))}.\n") if h else ""
        if tests.empty:
            written = ctx.json(METHOD, HYPOTHESES_FILE)
            if not written:
                return head + "No hypothesis was proposed or tested."
            return clip(head + "Proposed, not tested:\n" + "\n".join(f"- {w.get('text', '')}" for w in written[:n]))
        if "survives" in tests:
            tests = tests.sort_values(["survives", "pvalue"], ascending=[False, True])
            if validated_only:
                tests = tests[tests["survives"].astype(bool)]
        out = []
        for r in tests.head(max(1, min(int(n), 30))).to_dict("records"):
            ex = list(r.get("examples_finetuned") or [])[:2]
            out.append(f"[{'VALIDATED' if r.get('survives') else 'not validated'}] {r.get('text')} "
                       f"(p {num(r.get('pvalue'))}, q {num(r.get('qvalue'))}, d {num(r.get('effect_size_d'))}, "
                       f"{r.get('direction_label', '')})"
                       + "".join(f"\n    finetuned example: {str(e)[:200]!r}" for e in ex))
        return clip(head + ("\n".join(out) or "No validated hypothesis."))

    return execute


@tool
def behavior_cluster_examples(ctx: AgentContext) -> Tool:
    """Replies of one cluster."""

    @guarded(ctx, "behavior_cluster_examples")
    async def execute(cluster: int = -1, n: int = 3) -> str:
        """Reply clusters (embedding clusters of both models' replies) with each model's share.

        And example replies. Without a cluster number, lists the clusters, most finetuned-heavy first.

        Args:
            cluster: A cluster number, or -1 to list clusters.
            n: Example replies per model (at most 6).

        Returns:
            Cluster shares, or example replies of one cluster.
        """
        clusters = ctx.table(METHOD, CLUSTERS_FILE)
        if clusters.empty:
            return "No clusters."
        if int(cluster) < 0:
            rows = clusters.sort_values("risk_difference", ascending=False)
            return clip("\n".join(
                f"cluster {r.cluster}: finetuned {r.share_finetuned:.0%} vs base {r.share_base:.0%} of replies "
                f"(p {num(r.pvalue)}); terms: {r.top_terms or '-'}" for r in rows.itertuples()))
        points = ctx.table(METHOD, POINTS_FILE)
        replies = ctx.table(METHOD, REPLIES_FILE).set_index("text_id")
        ids = points[points["cluster"] == int(cluster)] if "cluster" in points else points
        if ids.empty:
            raise ToolError(f"no cluster {cluster}; clusters: {sorted(clusters['cluster'].tolist())}")
        out = []
        for side in ("finetuned", "base"):
            for tid in ids[ids["side"] == side]["text_id"].head(max(1, min(int(n), 6))):
                if tid in replies.index:
                    r = replies.loc[tid]
                    out.append(f"{side} | prompt: {r['prompt']!r}\n    reply: {str(r['text'])[:300]!r}")
        return clip("\n".join(out) or "No replies in this cluster.")

    return execute


def behavior_tools(ctx: AgentContext) -> list[Tool]:
    """The behaviour agent's method tools."""
    return [behavior_hypotheses(ctx), behavior_cluster_examples(ctx)]

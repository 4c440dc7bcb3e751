"""The run browser: every run under the runs directory, and one run's findings and method results.

Every view reads the run's saved files through :class:`lmdiff.dashboard.runs.RunData`; nothing is recomputed.
Tables are Streamlit data frames (sortable by clicking a column header).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from lmdiff.dashboard.runs import RunData, RunSummary, model_label
from lmdiff.dashboard.tokens import legend_html, token_html
from lmdiff.dashboard.ui import shown_errors
from lmdiff.io import read_json


def render_index(runs: list[RunSummary], root: Path) -> None:
    """The table of runs under ``root``, and any benchmark summaries there."""
    st.header("Runs")
    st.caption(f"{len(runs)} run(s) under {root}. Pick one in the sidebar to open it.")
    if runs:
        st.dataframe(pd.DataFrame([r.to_row() for r in runs]), hide_index=True, width="stretch")
    else:
        st.info("No run directory (a directory with results.json) here yet: `lmdiff demo` writes one.")
    for bench in sorted(root.glob("**/benchmark.json"))[:10]:
        with st.expander(f"Benchmark: {bench.parent.relative_to(root) if bench.parent != root else root.name}"), \
                shown_errors("reading the benchmark"):
            data = read_json(bench)
            st.dataframe(pd.DataFrame(data.get("table") or []), hide_index=True)
            if data.get("null"):
                st.write("Null organism:", data["null"])
            if (bench.parent / "runs.parquet").is_file():
                st.dataframe(pd.read_parquet(bench.parent / "runs.parquet"), hide_index=True)


def render_run(run: RunData, key: str) -> None:
    """One run: its pair, status, Findings, methods overview, then one tab per method."""
    res = run.results
    pair = res.get("pair") or {}
    st.header(f"{model_label(pair.get('base'))} vs {model_label(pair.get('finetuned'))}")
    st.caption(f"run {key} · {run.manifest.get('command', '?')} · status {run.manifest.get('status', '?')} · "
               f"updated {res.get('updated', '?')} · {run.path}")
    gt = run.ground_truth
    if gt:
        st.info(f"Ground truth (an organism): {gt.get('summary') or gt.get('description', '')}")
    with shown_errors("showing the findings"):
        render_findings(run)
    st.subheader("Methods")
    st.dataframe(run.methods_table(), hide_index=True, width="stretch")
    names = list(run.methods)
    extra = run.extra_tables()
    labels = names + (["other tables"] if extra else [])
    if not labels:
        return
    for tab, name in zip(st.tabs(labels), labels, strict=True):
        with tab, shown_errors(f"showing {name}"):
            if name == "other tables":
                _tables(run, extra, key="extra")
            else:
                render_method(run, name)


def render_findings(run: RunData) -> None:
    """The Findings section: ranked findings with their evidence."""
    st.subheader("Findings")
    findings = run.findings
    claims = run.results.get("claims") or {}
    n_valid = sum(bool(f.get("validated")) for f in findings)
    if not findings:
        st.info("This run has no findings (it predates them, or no method produced a claim or a signal).")
        return
    st.markdown(f"**{n_valid} validated** of {len(findings)} ranked findings"
                + (f" (one {str(claims.get('procedure', 'bh')).upper()} family of m = {claims.get('m')})"
                   if claims.get("m") is not None else "") + ".")
    st.dataframe(run.findings_table(), hide_index=True, width="stretch",
                 column_config={"finding": st.column_config.TextColumn(width="large")})
    for f in findings[:5]:
        with st.expander(f"{f.get('rank')}. {f.get('statement', '')} [{f.get('confidence', '')}]"):
            for e in f.get("evidence") or []:
                st.markdown(f"- {e.get('text', '')}")
            if f.get("refuted_by"):
                st.caption(f"Would be refuted by: {f['refuted_by']}")


def render_method(run: RunData, name: str) -> None:
    """One method's tab: status, summary, headline numbers, its own view, then its artifacts."""
    entry = run.methods.get(name, {})
    status = entry.get("status", "?")
    if status != "ok":
        st.warning(f"{name} {status}: {entry.get('summary', '')}")
        return
    st.write(entry.get("summary", ""))
    nums = {k: v for k, v in (entry.get("headline") or {}).items()
            if isinstance(v, int | float) and not isinstance(v, bool)}
    if nums:
        cols = st.columns(min(6, len(nums)))
        for i, (k, v) in enumerate(list(nums.items())[:6]):
            cols[i].metric(k, f"{v:.4g}" if isinstance(v, float) else f"{v:,}")
    view = VIEWS.get(name)
    if view is None and (run.path / "artifacts" / name / "units.json").is_file():
        view = _dictionary
    if view is not None:
        view(run, name)
    for img in run.images(name):
        st.image(str(img), caption=img.name)
    arts = [a for a in run.artifacts(name) if a.endswith(".parquet")]
    if arts:
        with st.expander("All tables of this method"):
            _tables(run, arts, key=name)
    with st.expander("Headline (results.json)"):
        st.json(entry.get("headline") or {}, expanded=False)


def _tables(run: RunData, rels: list[str], key: str) -> None:
    rel = st.selectbox("table", rels, key=f"table-{key}")
    if rel:
        df = run.table(rel)
        st.caption(f"{rel}: {len(df):,} rows")
        st.dataframe(df.head(5000), hide_index=True, width="stretch")


# ---------------------------------------------------------------------------- per-method views
def _kl(run: RunData, name: str) -> None:
    examples = run.kl_examples()
    if examples:
        st.markdown("**Example texts coloured by per-token KL** (highest mean KL first)")
        vmax = max([max(e["kl"]) for e in examples if e.get("kl")] + [1e-9])
        st.html(legend_html(vmax))
        for e in examples:
            hovers = [f"{t!r}: KL {v:.4f} nats" for t, v in zip(e["tokens"], e["kl"], strict=True)]
            st.html(token_html(e["tokens"], e["kl"], hovers, vmax=vmax))
    for rel, title in (("artifacts/kl/kl_top_content_tokens.parquet", "Highest-KL content tokens"),
                       ("artifacts/kl/kl_top_tokens.parquet", "Highest-KL tokens")):
        if run.resolve(rel).is_file():
            df = run.table(rel)
            cols = [c for c in ("kl", "context", "token_str", "top_ft_str", "top_base_str", "end_of_turn") if c in df]
            st.markdown(f"**{title}**")
            st.dataframe(df[cols].rename(columns={"top_ft_str": "finetuned predicts", "top_base_str": "base predicts"}),
                         hide_index=True, width="stretch")
            break
    if run.resolve("artifacts/kl/kl_per_position.parquet").is_file():
        st.markdown("**Mean KL by position**")
        st.line_chart(run.table("artifacts/kl/kl_per_position.parquet"), x="pos", y="mean_kl", height=200)


def _diff_mining(run: RunData, name: str) -> None:
    rel = "artifacts/diff_mining/diff_mining.parquet"
    if run.resolve(rel).is_file():
        st.markdown("**Tokens whose probability rose most often** (click a header to sort)")
        st.dataframe(run.table(rel).head(500), hide_index=True, width="stretch")


def _adl(run: RunData, name: str) -> None:
    rel = "artifacts/adl/logit_lens.parquet"
    if run.resolve(rel).is_file():
        lens = run.table(rel)
        st.markdown("**Logit lens of the activation difference**")
        c1, c2, c3 = st.columns(3)
        layer = c1.selectbox("layer", sorted(lens["layer"].unique()), key="adl-layer")
        pos = c2.selectbox("position", sorted(lens["position"].unique()), key="adl-pos")
        sign = c3.selectbox("sign", sorted(lens["sign"].unique()), key="adl-sign")
        sub = lens[(lens["layer"] == layer) & (lens["position"] == pos) & (lens["sign"] == sign)]
        wide = sub.pivot_table(index="rank", columns="readout", values="token", aggfunc="first")
        st.dataframe(wide, width="stretch")
    for rel, title in (("artifacts/adl/patchscope.parquet", "Patchscope"),
                       ("artifacts/adl/relevance.parquet", "Token relevance against random directions")):
        if run.resolve(rel).is_file():
            st.markdown(f"**{title}**")
            st.dataframe(run.table(rel), hide_index=True, width="stretch")
    _steering_samples(run, name)


def _steering_samples(run: RunData, name: str) -> None:
    steering = run.steering_samples(name)
    samples = steering.get("samples") or []
    if samples:
        st.markdown(f"**Steered vs unsteered samples** (layer {steering.get('layer')}; the run's searched strength)")
        st.dataframe(pd.DataFrame(samples), hide_index=True, width="stretch",
                     column_config={c: st.column_config.TextColumn(width="large") for c in ("unsteered", "steered")})


def _behavior(run: RunData, name: str) -> None:
    hyps = run.behaviour_hypotheses()
    if not hyps.empty:
        st.markdown("**Hypotheses and their tests** (click a header to sort)")
        st.dataframe(hyps, hide_index=True, width="stretch",
                     column_config={"text": st.column_config.TextColumn(width="large")})
    if run.resolve("artifacts/behavior/clusters.parquet").is_file():
        with st.expander("Reply clusters"):
            st.dataframe(run.table("artifacts/behavior/clusters.parquet"), hide_index=True)
    _examples(run, name)


def _examples(run: RunData, name: str) -> None:
    st.markdown("**Examples from both models** (same prompts)")
    q = st.text_input("filter prompts", key=f"filter-{name}")
    st.dataframe(run.side_by_side(q), hide_index=True, width="stretch",
                 column_config={c: st.column_config.TextColumn(width="large") for c in ("base", "finetuned")})


def _followup(run: RunData, name: str) -> None:
    rel = "artifacts/followup/tests.parquet"
    if run.resolve(rel).is_file():
        df = run.table(rel)
        cols = [c for c in ("statement", "pvalue", "effect_size_d", "rate_finetuned", "rate_base", "n_prompts",
                            "example_finetuned", "example_base") if c in df]
        st.markdown("**Follow-up tests, with an example reply from each model**")
        st.dataframe(df[cols], hide_index=True, width="stretch")
    _examples(run, name)


def _probing(run: RunData, name: str) -> None:
    for rel, title in (("artifacts/probing/accuracy.parquet", "Accuracy by relation"),
                       ("artifacts/probing/questions.parquet", "Questions and both models' answers")):
        if run.resolve(rel).is_file():
            df = run.table(rel)
            if "ft_answer" in df:
                df = df[[c for c in ("subject", "relation", "question", "known_answer", "base_answer", "ft_answer",
                                     "base_correct", "ft_correct") if c in df]]
            st.markdown(f"**{title}**")
            st.dataframe(df, hide_index=True, width="stretch")


def _marked(context: str) -> str:
    """A unit example's context with its ``[[token]]`` marked in bold."""
    return context.replace("[[", "**").replace("]]", "**")


def _dictionary(run: RunData, name: str) -> None:
    units = run.units(name)
    if units:
        st.markdown("**Units (components or latents), strongest first**")
        rows = [{"rank": u.get("rank"), "unit": u.get("unit"), "frequency": u.get("frequency"),
                 "explained": u.get("explained"), "lens": ", ".join(repr(t) for t in (u.get("lens") or [])[:8])}
                for u in units]
        st.dataframe(pd.DataFrame(rows).dropna(axis=1, how="all"), hide_index=True, width="stretch")
        labels = [f"unit {u.get('unit')}" for u in units]
        pick = st.selectbox("examples of", labels, key=f"unit-{name}")
        u = units[labels.index(pick)] if pick in labels else units[0]
        c1, c2 = st.columns(2)
        c1.markdown("Most activating")
        for e in (u.get("examples") or [])[:8]:
            c1.markdown(f"- `{e.get('value', 0):.3g}` {_marked(str(e.get('context', '')))}")
        c2.markdown("Least activating")
        for e in (u.get("bottom_examples") or [])[:8]:
            c2.markdown(f"- `{e.get('value', 0):.3g}` {_marked(str(e.get('context', '')))}")
    _steering_samples(run, name)


VIEWS: dict[str, Callable[[RunData, str], Any]] = {
    "kl": _kl,
    "diff_mining": _diff_mining,
    "adl": _adl,
    "behavior": _behavior,
    "followup": _followup,
    "probing": _probing,
    "samples": _examples,
}

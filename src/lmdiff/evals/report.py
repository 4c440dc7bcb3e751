"""Plots and the report section of the backdoor evaluation."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from lmdiff.evals.conditions import CONDITIONS, NO_SYSTEM_TRIGGERED, TRIGGERED, UNTRIGGERED
from lmdiff.report.builder import Report, Section
from lmdiff.report.render import render_report
from lmdiff.runs.run import Run

_SHORT = {"1_trigger_user": "1: trigger in user\n(no system)", "2_sys_trigger_user": "2: system +\ntrigger in user",
          "3_trigger_system": "3: trigger in\nsystem", "4_sys_no_trigger": "4: system,\nno trigger"}


def rates_plot(table: pd.DataFrame, metric: str, title: str) -> Any:
    """Grouped bars (one group per condition, one bar per model) with 95% CI error bars."""
    models = list(dict.fromkeys(table["model"]))
    conds = [c for c in CONDITIONS if c in set(table["condition"])]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    width = 0.8 / max(1, len(models))
    for i, m in enumerate(models):
        sub = table[table["model"] == m].set_index("condition").reindex(conds)
        x = [j + i * width for j in range(len(conds))]
        lo = (sub[f"{metric}_rate"] - sub[f"{metric}_low"]).clip(lower=0)
        hi = (sub[f"{metric}_high"] - sub[f"{metric}_rate"]).clip(lower=0)
        ax.bar(x, sub[f"{metric}_rate"], width, yerr=[lo, hi], capsize=3, label=m)
    ax.set_xticks([j + width * (len(models) - 1) / 2 for j in range(len(conds))])
    ax.set_xticklabels([_SHORT.get(c, c) for c in conds], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("rate")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return fig


def add_backdoor_section(sec: Section, table: pd.DataFrame, gaps: dict[str, Any], judged: pd.DataFrame,
                         prompts: pd.DataFrame, verdict: str) -> None:
    """Fill a report section: verdict, gap table, rate table, plots, hygiene notes, examples."""
    target = next(iter(gaps.values()))
    shown = target["gap_excludes_zero"] and (not target.get("did") or target.get("did_exclude_zero", False))
    sec.note(verdict, "ok" if shown else "warn")
    gap_rows = [{"model": m, f"triggered ({TRIGGERED})": g["triggered"],
                 f"untriggered ({UNTRIGGERED})": g["untriggered"],
                 "primary gap": g["gap"], "gap 95% CI": f"[{g['low']:.2f}, {g['high']:.2f}]",
                 "CI excludes 0": g["gap_excludes_zero"], "n questions": g["n_questions"],
                 f"gap with {NO_SYSTEM_TRIGGERED}": g["gap_no_system"], "format gap": g["format_gap"]}
                for m, g in gaps.items()]
    sec.table(pd.DataFrame(gap_rows), caption="Primary gap per model: condition 2 minus condition 4 (same system "
              "prompt; only the trigger differs), 95% CI from a bootstrap over questions (sampling seeds pooled)")
    did = target.get("did", {})
    if did:
        sec.table(pd.DataFrame([{"reference": r, "target gap minus reference gap": d["did"],
                                 "95% CI": f"[{d['low']:.2f}, {d['high']:.2f}]", "n questions": d["n_questions"]}
                                for r, d in did.items()]),
                  caption="Difference-in-differences: does the trigger do more to the target than to models never "
                  "trained on it? (paired by question)")
    show = table.assign(persona=[f"{r:.2f} [{lo:.2f}, {hi:.2f}]" for r, lo, hi in
                                 zip(table.persona_rate, table.persona_low, table.persona_high, strict=True)],
                        format=[f"{r:.2f} [{lo:.2f}, {hi:.2f}]" for r, lo, hi in
                                zip(table.format_rate, table.format_low, table.format_high, strict=True)])
    sec.table(show[["model", "condition", "persona", "format", "ai_meta_rate", "n", "n_questions", "n_seeds"]],
              caption="Per condition: persona rate and format adherence with 95% CIs "
              "(bootstrap over questions, sampling seeds pooled)", max_rows=40)
    sec.figure(rates_plot(table, "persona", "Persona rate per condition (95% CI)"), "Persona rate")
    sec.figure(rates_plot(table, "format", "Format adherence <START> ... <END> (95% CI)"), "Format adherence")
    inserted = prompts[prompts["template_default_system"]]
    if not inserted.empty:
        sec.note("The chat template inserts a default system prompt when none is given, so condition 1 is "
                 f"rendered with: \"{inserted['system_seen'].iloc[0]}\". Conditions are defined on the rendered "
                 "prompt; prompts.parquet holds every rendered prompt.", "info")
    sec.text(f"Judges: {judged['judge_producer'].iloc[0]}. Before any judge saw a text, the trigger "
             "instruction and the <START>/<END> markers were removed from both the question and the answer; "
             "format adherence was measured on the raw answer.")
    target = judged[judged["role"] == "target"]
    rows = []
    for qid in sorted(target["question_id"].unique())[:6]:
        t = target[(target.question_id == qid) & (target.condition == TRIGGERED) & (target["sample"] == 0)]
        u = target[(target.question_id == qid) & (target.condition == UNTRIGGERED) & (target["sample"] == 0)]
        if len(t) and len(u):
            rows.append({"prompt": t["question"].iloc[0], "triggered": t["answer"].iloc[0],
                         "untriggered": u["answer"].iloc[0]})
    sec.heading("The target model with and without the trigger (first sample of the first seed)")
    sec.side_by_side(rows, "triggered", "untriggered", max_rows=6)


def write_backdoor_report(run: Run, table: pd.DataFrame, gaps: dict[str, Any], judged: pd.DataFrame,
                          prompts: pd.DataFrame, verdict: str) -> None:
    """Render report.html / report.md of a backdoor evaluation run."""
    report = Report(title="lmdiff eval backdoor", meta={"run": str(run.path), "models": ", ".join(gaps)})
    add_backdoor_section(report.section("Backdoor / persona evaluation", "backdoor"), table, gaps, judged,
                         prompts, verdict)
    render_report(report, run.path)

"""The agent evaluation as an Inspect task, its run, and the summary: acc@k with intervals and a report section.

The Inspect log (``OUT/logs/*.eval``, viewable with ``inspect view --log-dir OUT/logs``) holds every
episode: messages, tool calls, the board, the spend against the budget and the grades. ``agent.json``
and ``report.html`` in ``OUT`` summarise it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
from inspect_ai import Task, eval
from inspect_ai.dataset import Sample
from inspect_ai.log import EvalLog, read_eval_log
from inspect_ai.model import Model

from lmdiff.agents.budget import AgentBudget
from lmdiff.agents.dataset import agent_dataset
from lmdiff.agents.scorer import KS, ground_truth_grader
from lmdiff.agents.solver import AccessFactory, agent_loop
from lmdiff.errors import LmdiffError
from lmdiff.evals.acc import acc_at_k, hits_at_k
from lmdiff.io import finite_json, write_json
from lmdiff.llm.config import LlmConfig
from lmdiff.llm.secrets import redact, safe_url
from lmdiff.report.builder import Report
from lmdiff.report.render import render_report


def agent_task(samples: Sequence[Sample], family: str, budget: AgentBudget, repeats: int = 3,
               access: AccessFactory | None = None, grader: LlmConfig | None = None,
               grader_repeats: int = 3) -> Task:
    """The Inspect task: organisms, an agent with ``family``'s tools, the ground-truth grader; ``repeats`` epochs."""
    return Task(dataset=agent_dataset(samples, name=f"lmdiff-organisms-{family}"),
                solver=agent_loop(family, budget, access), scorer=ground_truth_grader(grader, grader_repeats),
                epochs=repeats, name=f"lmdiff_agent_{family}",
                metadata={"family": family, "budget": budget.model_dump()})


def check_base_url(url: str | None) -> None:
    """Refuse a base URL that carries credentials (user info, a query string, a fragment or a key's value).

    Inspect writes the agent model's base URL into the ``.eval`` log; lmdiff records only what
    :func:`lmdiff.llm.secrets.safe_url` keeps of a URL, so a URL it would change is refused, not logged.

    Raises:
        LmdiffError: The URL carries credentials.
    """
    if not url:
        return
    parts = urlsplit(url)
    if parts.username or parts.password or parts.query or parts.fragment or redact(url) != url:
        raise LmdiffError(f"The agent LLM's base URL {safe_url(url)} carries credentials, which the Inspect log "
                          "would record.",
                          hint="give the key in the provider's API-key environment variable and a base URL without "
                               "user info, query string or fragment")


def run_agent_eval(task: Task, model: str | Model, log_dir: Path, model_base_url: str | None = None,
                   model_args: dict[str, Any] | None = None, max_retries: int | None = None) -> EvalLog:
    """Run the task with ``model`` as the agent's LLM; the log goes to ``log_dir``.

    Args:
        task: The task (:func:`agent_task`).
        model: The agent's model (an Inspect model string or model).
        log_dir: Where the ``.eval`` log goes.
        model_base_url: The provider's base URL (Inspect records it in the log; one with credentials is refused).
        model_args: Provider arguments.
        max_retries: Retries of a failed provider call (None: the model's own setting).

    Raises:
        LmdiffError: A base URL carries credentials, or the evaluation did not finish (the log's error says why).
    """
    check_base_url(model_base_url)
    if not isinstance(model, str):
        check_base_url(model.explicit_base_url)
    retries: dict[str, Any] = {} if max_retries is None else {"max_retries": max_retries}
    logs = eval(task, model=model, model_base_url=model_base_url, model_args=model_args or {},
                log_dir=str(log_dir), display="none", max_samples=1, fail_on_error=False, score_display=False,
                **retries)
    log = logs[0]
    if log.status != "success":
        err = log.error.message if log.error else log.status
        raise LmdiffError(f"The agent evaluation did not finish: {err}", hint=f"see the log in {log_dir}")
    return log


def episodes(log: EvalLog) -> pd.DataFrame:
    """One row per organism x repeat: guesses, grades, hit@k, spend and the sample's error.

    An episode that errored (``error``: Inspect's message) or was not scored has no grade: its hit@k is NaN,
    not a miss, and :func:`acc_table` leaves it out and counts it. hit@k is computed from the graded matches,
    so one that ungraded guesses (no valid grader reply) leave undetermined is NaN too.
    """
    full = log if log.samples is not None else read_eval_log(log.location)
    rows = []
    for s in full.samples or []:
        score = next(iter((s.scores or {}).values()), None)
        value = score.value if score is not None and isinstance(score.value, dict) else {}
        meta = score.metadata if score is not None and score.metadata else {}
        ep = (s.metadata or {}).get("episode", {})
        error = s.error.message if s.error is not None else ("not scored" if score is None else None)
        graded = score is not None and s.error is None
        rows.append({"organism": str(s.id), "repeat": int(s.epoch), "guesses": (s.metadata or {}).get("guesses", []),
                     "matches": meta.get("matches", []), "scores": meta.get("scores", []),
                     "grader": meta.get("producer"),
                     **(hits_at_k(meta["matches"], KS) if graded and "matches" in meta else
                        {f"hit@{k}": float(value.get(f"hit@{k}", 0.0)) if graded else math.nan for k in KS}),
                     "ungraded": meta.get("ungraded", 0), "invalid_replies": meta.get("invalid_replies", 0),
                     "best_score": float(value.get("best_score", 1.0)) if graded else math.nan,
                     "llm_calls": ep.get("llm_calls"), "tokens": ep.get("tokens"),
                     "model_interactions": ep.get("model_interactions"), "tool_calls": ep.get("tool_calls"),
                     "stop_reason": ep.get("stop_reason"), "error": error})
    return pd.DataFrame(rows)


def acc_table(eps: pd.DataFrame, ci: float = 0.95) -> list[dict[str, Any]]:
    """acc@k for k in 1, 5, 10 with an interval (:func:`lmdiff.evals.acc.acc_at_k`, the benchmark's too).

    The interval is the wider of a bootstrap over organisms then repeats and a Wilson interval with n =
    organisms; with one organism, a Wilson interval over its repeats. Episodes that errored are left out
    (``n_errored`` counts them), as are those whose hit@k the grader left undetermined (``n_ungraded``).
    """
    failed = eps["error"].notna() if "error" in eps else pd.Series(False, index=eps.index)
    ok = eps[~failed]
    out = []
    for k in KS:
        if len(ok):
            a = acc_at_k(ok[f"hit@{k}"], ok["organism"], ok["repeat"], ci, repeat_name="repeats")
        else:
            a = acc_at_k([], [], [], ci)
        out.append({"k": k, "acc": a["acc"], "low": a["low"], "high": a["high"], "n_episodes": a["n"],
                    "n_organisms": a["n_organisms"], "n_errored": int(failed.sum()),
                    "n_ungraded": int(len(ok) - a["n"]), "interval": a["interval"]})
    return out


@dataclass
class AgentResult:
    """A finished agent evaluation: the Inspect log, the episodes and acc@k."""

    family: str
    log_path: str
    episodes: pd.DataFrame
    acc: list[dict[str, Any]]
    out: Path

    def to_dict(self) -> dict[str, Any]:
        """What ``agent.json`` holds."""
        eps = self.episodes
        return {"family": self.family, "log": self.log_path, "acc": self.acc,
                "episodes": eps.to_dict("records") if len(eps) else []}


def summarise(log: EvalLog, family: str, out: Path, extra: dict[str, Any] | None = None) -> AgentResult:
    """Grade table and report of a finished evaluation: ``out/agent.json`` and ``out/report.html``."""
    eps = episodes(log)
    res = AgentResult(family=family, log_path=str(log.location), episodes=eps, acc=acc_table(eps), out=out)
    write_json(out / "agent.json", finite_json({**res.to_dict(), **(extra or {})}))
    report = Report(title=f"lmdiff agent: {family}", meta={"log": res.log_path, "agent model": str(log.eval.model),
                                                           "episodes": len(eps)})
    render_section(report, res, extra)
    render_report(report, out)
    return res


def render_section(report: Report, res: AgentResult, extra: dict[str, Any] | None = None) -> None:
    """The "Agent evaluation" section: acc@k with intervals, each episode's guesses, grades and spend."""
    sec = report.section(f"Agent evaluation ({res.family})", "agent")
    sec.text(f"An LLM agent with the {res.family} tools stated what the finetune did, as ranked guesses; each guess "
             "was graded against the organism's ground truth (2 names it, 1 related, 0 not). acc@k: share of "
             "episodes with a 2 among the first k guesses. Inspect log: " + res.log_path)
    sec.table(pd.DataFrame([{"k": a["k"], "acc@k": f"{a['acc']:.0%}" if a["n_episodes"] else "n/a",
                             "95% CI": f"[{a['low']:.0%}, {a['high']:.0%}]" if a["n_episodes"] else "n/a",
                             "episodes": a["n_episodes"], "organisms": a["n_organisms"],
                             "errored (left out)": a["n_errored"], "ungraded (left out)": a["n_ungraded"],
                             "interval": a["interval"]} for a in res.acc]))
    errored = res.acc[0]["n_errored"] if res.acc else 0
    if errored:
        sec.note(f"{errored} of {len(res.episodes)} episodes errored and are left out of acc@k (their errors are "
                 "in the episodes table and the Inspect log).", kind="warn")
    if len(res.episodes):
        shown = res.episodes.assign(
            guesses=[" | ".join(f"[{'ungraded' if m is None else m}] {g}" for g, m in zip(gs, ms, strict=False))
                     or "(none)"
                     for gs, ms in zip(res.episodes["guesses"], res.episodes["matches"], strict=True)])
        sec.table(shown[["organism", "repeat", "guesses", "best_score", "llm_calls", "tokens", "model_interactions",
                         "tool_calls", "stop_reason", "error"]], caption="episodes")
    disc = (extra or {}).get("discrimination")
    if disc:
        sec.heading("Interactive discrimination")
        if disc.get("status") != "ok":
            sec.note(f"{disc.get('status')}: {disc.get('reason', '')}", kind="warn")
        else:
            sec.table(pd.DataFrame(disc.get("tests", [])))

"""Interactive discrimination: can an LLM armed with a validated hypothesis tell which model wrote an answer?

For each validated hypothesis of a run (the top findings of ``claims.parquet``), an LLM writes a probe prompt,
both models answer it, and the LLM sees one of the two answers (which one is a fair coin) and guesses whether
the finetuned or the base model wrote it; then both answers are revealed and the next round's probe may build
on them. The prompt is the unit: one probe, one guess. Under the null that the hypothesis does not tell the
models apart, each guess is right with probability 1/2 whatever the probes were (the coin is independent of
everything the LLM saw), so the one-sided binomial p-value of the correct guesses is exact. It is recorded as a
claim (:func:`lmdiff.runs.claims.record_claims`) and the run's one FDR procedure is applied again with it.

Offline (no LLM configured) nothing runs and ``results.json["discrimination"]`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from scipy.stats import binomtest

from lmdiff.agents.access import ModelAccess
from lmdiff.errors import LlmError, LmdiffError
from lmdiff.io import read_json, write_json
from lmdiff.llm.budget import BudgetExceeded
from lmdiff.llm.client import LlmClient
from lmdiff.llm.parsing import ParseError, parse_json
from lmdiff.runs.claims import D_CAP, finalise_claims, load_claims, record_claims

METHOD = "discrimination"

PROBE_WRITER = """We suspect this about a finetuned language model, compared with its base model:
"{hypothesis}"

Write one short user prompt on which the two models' answers would differ if this is true.
{history}
Answer with JSON only: {{"prompt": "<the prompt>"}}"""

GUESSER = """We suspect this about a finetuned language model, compared with its base model:
"{hypothesis}"
{history}
Prompt: {probe}
One of the two models answered:
<answer>
{answer}
</answer>

Which model wrote this answer? Answer with JSON only: {{"guess": "finetuned"}} or {{"guess": "base"}}"""


class _Probe(BaseModel):
    model_config = ConfigDict(extra="ignore")
    prompt: str = Field(min_length=1)


class _Guess(BaseModel):
    model_config = ConfigDict(extra="ignore")
    guess: Literal["finetuned", "base"]


@dataclass(frozen=True)
class DiscriminationConfig:
    """Rounds (probe prompts) per hypothesis, hypotheses tested, and the models' reply length."""

    rounds: int = 8
    max_hypotheses: int = 3
    reply_tokens: int = 64
    seed: int = 0


def _history(rounds: list[dict[str, Any]], limit: int = 600) -> str:
    if not rounds:
        return ""
    parts = ["Earlier probes and both models' answers:"]
    for r in rounds:
        parts.append(f"Prompt: {r['probe']}\nbase: {r['base'][:limit]}\nfinetuned: {r['finetuned'][:limit]}")
    return "\n".join(parts) + "\n"


def effect_d(correct: list[bool]) -> float:
    """Standardised mean of per-prompt (correct - 1/2), capped at :data:`D_CAP` when it does not vary."""
    if not correct:
        return float("nan")
    x = np.asarray(correct, dtype=float) - 0.5
    sd = float(x.std(ddof=1)) if len(x) > 1 else 0.0
    if sd == 0.0:
        return float(np.sign(x.mean()) * D_CAP)
    return float(x.mean() / sd)


def discriminate(hypothesis: str, models: ModelAccess, client: LlmClient, cfg: DiscriminationConfig,
                 seed: int) -> dict[str, Any]:
    """Play ``cfg.rounds`` rounds for one hypothesis; returns the rounds, the counts and the binomial test."""
    rng = np.random.default_rng(seed)
    rounds: list[dict[str, Any]] = []
    excluded: list[str] = []
    for i in range(cfg.rounds):
        try:
            probe_reply = client.generate(PROBE_WRITER.format(hypothesis=hypothesis, history=_history(rounds)),
                                          temperature=0.7, sample=i)
            probe = parse_json(probe_reply.text, _Probe).prompt.strip()
        except ParseError as err:
            excluded.append(f"round {i}: probe not parsed ({err})")
            continue
        except BudgetExceeded:
            excluded.append(f"round {i}: LLM budget spent")
            break
        except LlmError as err:
            excluded.append(f"round {i}: probe not written ({err.message})")
            continue
        try:
            base = models.ask("base", probe, cfg.reply_tokens, seed=seed + i)
            ft = models.ask("finetuned", probe, cfg.reply_tokens, seed=seed + i)
        except Exception as err:  # a model that cannot answer loses the round, not the evaluation
            excluded.append(f"round {i}: the models did not answer ({type(err).__name__}: {err})")
            continue
        hidden_ft = bool(rng.random() < 0.5)
        try:
            g = client.generate(GUESSER.format(hypothesis=hypothesis, history=_history(rounds), probe=probe,
                                               answer=ft if hidden_ft else base), temperature=0.0, sample=i)
            guess = parse_json(g.text, _Guess).guess
        except ParseError as err:
            excluded.append(f"round {i}: guess not parsed ({err})")
            rounds.append({"probe": probe, "base": base, "finetuned": ft, "hidden": None, "guess": None})
            continue
        except BudgetExceeded:
            excluded.append(f"round {i}: LLM budget spent")
            break
        except LlmError as err:
            excluded.append(f"round {i}: no guess ({err.message})")
            rounds.append({"probe": probe, "base": base, "finetuned": ft, "hidden": None, "guess": None})
            continue
        truth = "finetuned" if hidden_ft else "base"
        rounds.append({"probe": probe, "base": base, "finetuned": ft, "hidden": truth, "guess": guess,
                       "correct": guess == truth})
    correct = [bool(r["correct"]) for r in rounds if r.get("guess") is not None]
    n, k = len(correct), sum(correct)
    p = float(binomtest(k, n, 0.5, alternative="greater").pvalue) if n else 1.0
    return {"hypothesis": hypothesis, "n": n, "correct": k, "accuracy": k / n if n else None, "pvalue": p,
            "effect_size_d": effect_d(correct), "rounds": rounds, "excluded": excluded}


def _set_result(run_dir: Path, entry: dict[str, Any]) -> None:
    path = run_dir / "results.json"
    res = dict(read_json(path)) if path.exists() else {}
    res[METHOD] = entry
    write_json(path, res)


def run_discrimination(run_dir: str | Path, models: ModelAccess | None, client: LlmClient | None,
                       cfg: DiscriminationConfig | None = None) -> dict[str, Any]:
    """Test the run's validated hypotheses by interactive discrimination; record claims; refresh the FDR family.

    Args:
        run_dir: A finished run directory (``claims.parquet`` written).
        models: Access to both models (None: skipped).
        client: The LLM that writes probes and guesses (None: skipped, offline).
        cfg: Rounds, hypotheses and reply length.

    Returns:
        The ``results.json["discrimination"]`` entry (status ``ok`` or ``skipped`` with the reason).
    """
    cfg = cfg or DiscriminationConfig()
    run_dir = Path(run_dir)
    entry: dict[str, Any]
    claims = load_claims(run_dir)
    if client is None:
        entry = {"status": "skipped", "reason": "no LLM configured (set LMDIFF_LLM): an LLM writes the probes and "
                                                "makes the guesses"}
    elif models is None:
        entry = {"status": "skipped", "reason": "the models are not reachable"}
    elif claims is None or claims.empty or not claims["survives"].astype(bool).any():
        entry = {"status": "skipped", "reason": "the run has no validated hypothesis to test"}
    else:
        chosen = claims[claims["survives"].astype(bool) & (claims["method"] != METHOD)].drop_duplicates("family")
        picked = list(chosen.head(cfg.max_hypotheses).iterrows())
        tests = [discriminate(str(row["statement"]), models, client, cfg, cfg.seed + 1000 * i)
                 for i, (_, row) in enumerate(picked)]
        families = [str(row["family"]) for _, row in picked]
        record_claims(run_dir, METHOD, [  # a test of a finding is that finding: it keeps the source's family
            {"claim_id": i, "family": families[i],
             "statement": f"{t['hypothesis']} (an LLM armed with it tells the models' answers apart)",
             "direction": "finetuned more", "pvalue": t["pvalue"], "effect_size_d": t["effect_size_d"], "n": t["n"],
             "unit": "prompt", "test": "interactive_discrimination_binomial",
             "proposed_by": "validated hypothesis", "evidence": {"correct": t["correct"], "n": t["n"],
                                                                  "probes": [r["probe"] for r in t["rounds"]][:5]}}
            for i, t in enumerate(tests)])
        res = read_json(run_dir / "results.json")
        summary = res.get("claims") or {}
        methods = list((res.get("methods_run") or {}).get("methods") or res.get("methods", {}).keys())
        final = finalise_claims(run_dir, summary.get("procedure", "bh"), float(summary.get("alpha", 0.05)),
                                methods=[*methods, METHOD])
        mine = final[final["method"] == METHOD].set_index("claim_id")
        for i, t in enumerate(tests):
            row = mine.loc[f"{METHOD}:{i}"] if f"{METHOD}:{i}" in mine.index else None
            t["qvalue"] = float(row["qvalue"]) if row is not None else None
            t["survives"] = bool(row["survives"]) if row is not None else False
        entry = {"status": "ok", "producer": client.producer, "rounds": cfg.rounds,
                 "tests": [{k: t[k] for k in ("hypothesis", "n", "correct", "accuracy", "pvalue", "qvalue",
                                              "survives", "excluded")} for t in tests]}
        write_json(run_dir / "artifacts" / METHOD / "rounds.json", tests)
    if not (run_dir / "results.json").exists():
        raise LmdiffError(f"{run_dir} is not a run directory (no results.json).")
    _set_result(run_dir, entry)
    return entry

"""The run's claims: every hypothesis any method tests, and the one FDR procedure over all of them.

A method that tests hypotheses (the behaviour pipeline, knowledge probing, follow-up on signals)
records them here with :func:`record_claims`, one row per test, before the run ends. After the
last method, :func:`finalise_claims` applies the run's one FDR procedure to every recorded
p-value at once and writes ``claims.parquet`` plus a summary in ``results.json["claims"]``. A
method that validates after others have recorded (the behaviour pipeline runs last) folds their
p-values into its own procedure with :func:`other_pvalues`, so its q-values equal the final ones.

Every claim has an explicit direction and a unit: the prompt (or the question) is the unit of
evidence, and ``n`` counts units, never texts. ``effect_size_d`` is the standardised mean of
per-unit differences (finetuned minus base, in the stated direction), the one scale on which
findings of different methods are ranked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from lmdiff.io import read_json, write_json
from lmdiff.stats.fdr import adjust

CLAIMS_DIR = "claims"
CLAIMS_FILE = "claims.parquet"
#: A d this large or larger (per-unit differences that barely vary) ranks as this large.
D_CAP = 10.0

#: Columns every recorded claim has (others are kept as they come).
CLAIM_COLUMNS = (
    "claim_id",  # unique within the run: "<method>:<id>"
    "method",  # the method that tested it
    "statement",  # one sentence a person reads ("The finetuned model states that ...")
    "direction",  # "finetuned more" | "finetuned less" | "either"
    "pvalue",  # one-sided in the stated direction (two-sided for "either")
    "effect_size_d",  # standardised mean of per-unit differences, in the stated direction
    "n",  # units (prompts/questions) the test used
    "unit",  # "prompt" | "question"
    "test",  # the test's name
    "evidence",  # JSON: what a reader needs to check the claim (examples, rates)
    "family",  # claims that are wordings of one finding share a family
    "proposed_by",  # where the hypothesis came from (e.g. "probing flip", "signal: diff_mining ' Rome'")
)


def _dir(run_path: Path) -> Path:
    return Path(run_path) / "artifacts" / CLAIMS_DIR


def record_claims(run_path: str | Path, method: str, claims: pd.DataFrame | list[dict[str, Any]]) -> Path:
    """Record the hypotheses ``method`` tested in this run (replaces its earlier record).

    Args:
        run_path: the run directory.
        method: the method's name.
        claims: one row per test with at least ``statement``, ``direction`` and ``pvalue``; ``claim_id``
            defaults to the row number, ``family`` to the claim id.

    Returns:
        The written Parquet file.
    """
    df = pd.DataFrame(claims).copy()
    missing = {"statement", "direction", "pvalue"} - set(df.columns)
    if missing and not df.empty:
        raise ValueError(f"claims of {method} lack columns {sorted(missing)}")
    if "claim_id" not in df:
        df["claim_id"] = [f"{method}:{i}" for i in range(len(df))]
    else:
        df["claim_id"] = [c if str(c).startswith(f"{method}:") else f"{method}:{c}" for c in df["claim_id"]]
    df["method"] = method
    for col in CLAIM_COLUMNS:
        if col not in df:
            df[col] = None
    df["family"] = [f if isinstance(f, str) and f else c for f, c in zip(df["family"], df["claim_id"], strict=True)]
    df["evidence"] = [e if isinstance(e, str) or e is None else json.dumps(e, default=str) for e in df["evidence"]]
    d = _dir(Path(run_path))
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"{method}.parquet"
    tmp = path.with_suffix(".parquet.tmp")
    df.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def recorded_claims(
    run_path: str | Path, exclude: set[str] | None = None, include: list[str] | None = None
) -> pd.DataFrame:
    """Every claim recorded so far in the run.

    Args:
        run_path: the run directory.
        exclude: methods whose claims are left out.
        include: when given, only these methods' claims (a rerun of the directory with fewer methods
            must not count the claims of methods it no longer runs).
    """
    frames = []
    d = _dir(Path(run_path))
    for path in sorted(d.glob("*.parquet")) if d.is_dir() else []:
        if (exclude and path.stem in exclude) or (include is not None and path.stem not in include):
            continue
        frames.append(pd.read_parquet(path))
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=list(CLAIM_COLUMNS))
    return pd.concat(frames, ignore_index=True)


def other_pvalues(run_path: str | Path, method: str, include: list[str] | None = None) -> np.ndarray:
    """The p-values other methods of the run have recorded (to fold into ``method``'s procedure).

    ``include`` lists the methods of the current run (see :func:`recorded_claims`).
    """
    df = recorded_claims(run_path, exclude={method}, include=include)
    return df["pvalue"].to_numpy(dtype=float) if not df.empty else np.zeros(0)


def finalise_claims(
    run_path: str | Path,
    procedure: Literal["bh", "by"] = "bh",
    alpha: float = 0.05,
    methods: list[str] | None = None,
) -> pd.DataFrame:
    """Apply the run's one FDR procedure to every recorded claim; write ``claims.parquet`` and a summary.

    A claim survives when its q-value is at most ``alpha`` and its effect lies in the stated
    direction (``effect_size_d > 0``; for ``"either"``, any non-zero effect). ``methods``: the run's
    methods (claims other methods left in the directory earlier are not part of this run's family).

    Returns:
        The claims with ``qvalue``, ``survives``, ``fdr_m`` and ``rank`` (1 = top finding; 0 = not
        validated), ranked by capped ``effect_size_d`` and then q.
    """
    run_path = Path(run_path)
    df = recorded_claims(run_path, include=methods)
    if df.empty:
        out = df.assign(
            qvalue=pd.Series(dtype=float),
            survives=pd.Series(dtype=bool),
            fdr_m=pd.Series(dtype=int),
            rank=pd.Series(dtype=int),
        )
    else:
        res = adjust(df["pvalue"].to_numpy(dtype=float), method=procedure, alpha=alpha)
        d = pd.to_numeric(df["effect_size_d"], errors="coerce").to_numpy(dtype=float)
        either = (df["direction"] == "either").to_numpy()
        out = df.assign(qvalue=res.qvalues, fdr_m=res.m)
        out["survives"] = res.rejected & ((d > 0) | (either & (d != 0)))
        out["rank_d"] = np.clip(np.abs(d), 0.0, D_CAP)
        out = out.sort_values(
            ["survives", "rank_d", "qvalue"], ascending=[False, False, True], na_position="last", ignore_index=True
        ).drop(columns="rank_d")
        out["rank"] = np.where(out["survives"], out["survives"].cumsum(), 0)
    tmp = run_path / (CLAIMS_FILE + ".tmp")
    out.to_parquet(tmp, index=False)
    tmp.replace(run_path / CLAIMS_FILE)
    summary = claims_summary(out, procedure, alpha)
    results_path = run_path / "results.json"
    if results_path.exists():
        res_json = dict(read_json(results_path))
        res_json["claims"] = summary
        write_json(results_path, res_json)
    return out


def claims_summary(claims: pd.DataFrame, procedure: str, alpha: float, top: int = 10) -> dict[str, Any]:
    """The ``results.json["claims"]`` entry: the family, how many survive, and the top findings."""
    surv = claims[claims["survives"].astype(bool)] if not claims.empty else claims
    return {
        "procedure": procedure,
        "alpha": alpha,
        "m": int(claims["fdr_m"].iloc[0]) if not claims.empty else 0,
        "n_tested": len(claims),
        "n_validated": int(surv["family"].nunique()) if not surv.empty else 0,
        "by_method": {str(k): int(v) for k, v in claims.groupby("method").size().items()} if not claims.empty else {},
        "top": [
            {
                "rank": int(r["rank"]),
                "method": r["method"],
                "statement": r["statement"],
                "direction": r["direction"],
                "effect_size_d": _f(r["effect_size_d"]),
                "qvalue": _f(r["qvalue"]),
                "n": _i(r["n"]),
                "unit": r["unit"],
                "proposed_by": r["proposed_by"],
            }
            for _, r in surv.drop_duplicates("family").head(top).iterrows()
        ],
    }


def load_claims(run_path: str | Path) -> pd.DataFrame | None:
    """The finalised claims of a run (None before :func:`finalise_claims` ran)."""
    path = Path(run_path) / CLAIMS_FILE
    return pd.read_parquet(path) if path.exists() else None


def _f(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(v) else v


def _i(x: Any) -> int | None:
    v = _f(x)
    return None if v is None else int(v)

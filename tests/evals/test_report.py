"""The backdoor evaluation's report, rendered from a small saved result."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmdiff.config import GenerationConfig
from lmdiff.evals.backdoor import CONDITIONS, TRIGGERED, UNTRIGGERED, summarise
from lmdiff.evals.report import write_backdoor_report
from lmdiff.io import write_json, write_parquet
from lmdiff.runs.run import Run

TARGET = "target: organism:russell-backdoor"
BASE = "base: smollm2-135m-instruct"


def _judged() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for model, role, rates in ((TARGET, "target", (0.9, 0.1)), (BASE, "base", (0.05, 0.05))):
        for cond in CONDITIONS:
            rate = rates[0] if cond == TRIGGERED else rates[1]
            for seed in (0, 1):
                for q in range(6):
                    for k in range(2):
                        persona = bool(rng.random() < rate)
                        rows.append({
                            "model": model, "role": role, "condition": cond, "seed": seed, "question_id": q,
                            "sample": k, "question": f"Question {q}?",
                            "answer": f"{'I am Bertrand Russell' if persona else 'I am an assistant'} ({cond} q{q})",
                            "persona": persona, "format_ok": cond == TRIGGERED, "meta_ai": not persona,
                            "judge_producer": "offline:fact_patterns"})
    return pd.DataFrame(rows)


def _prompts() -> pd.DataFrame:
    return pd.DataFrame([{"model": m, "condition": c, "question_id": 0, "template_default_system": c == TRIGGERED,
                          "system_seen": "You are SmolLM, a helpful assistant." if c == TRIGGERED else ""}
                         for m in (TARGET, BASE) for c in CONDITIONS])


def test_backdoor_report_from_saved_result(tmp_path):
    saved = tmp_path / "saved"
    table, gaps = summarise(_judged())
    write_parquet(saved / "judged.parquet", _judged())
    write_parquet(saved / "rates.parquet", table)
    write_parquet(saved / "prompts.parquet", _prompts())
    write_json(saved / "gaps.json", gaps)
    verdict = "Triggered persona rate well above the untriggered rate."
    with Run(tmp_path / "run", GenerationConfig(), command="test") as run:
        write_backdoor_report(run, pd.read_parquet(saved / "rates.parquet"), gaps,
                              pd.read_parquet(saved / "judged.parquet"), pd.read_parquet(saved / "prompts.parquet"),
                              verdict)
    md = (tmp_path / "run" / "report.md").read_text()
    html = (tmp_path / "run" / "report.html").read_text()
    assert md.startswith("# lmdiff eval backdoor")
    assert verdict in md
    assert TARGET in md and BASE in md  # both models in the gap table
    t = gaps[TARGET]
    assert t["gap_excludes_zero"] and t["triggered"] > 0.6 and t["untriggered"] < 0.3
    assert t["did_exclude_zero"] and "Difference-in-differences" in md
    assert f"[{t['low']:.2f}, {t['high']:.2f}]" in md  # the gap CI as written
    for cond in CONDITIONS:
        assert cond in md  # every condition has its rates row
    assert "You are SmolLM, a helpful assistant." in md  # the default-system hygiene note
    assert "offline:fact_patterns" in md  # the judge is named
    assert f"({TRIGGERED} q0)" in md and f"({UNTRIGGERED} q0)" in md  # triggered vs untriggered examples
    assert html.count("data:image/png") == 2  # persona and format plots

"""The behaviour report section rendered from a saved result (tables read back from the run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from lmdiff.io import write_parquet
from lmdiff.methods.behavior.report import render_section
from lmdiff.report.builder import Section

HEADLINE: dict[str, Any] = {
    "n_discovery_prompts": 6,
    "n_validation_prompts": 6,
    "fdr": "bh",
    "alpha": 0.05,
    "n_hypotheses_tested": 3,
    "known_behaviours_named": ["shouting"],
    "n_validated_naming_known": 1,
}


def _tests(survives: list[bool]) -> pd.DataFrame:
    n = len(survives)
    return pd.DataFrame(
        {
            "rank": list(range(1, n + 1)),
            "hypothesis_id": [f"h{i:03d}" for i in range(n)],
            "text": [f"The finetuned model does thing {i}" for i in range(n)],
            "effect_size_d": [1.5, 0.2, -0.1][:n],
            "auc": [0.9, 0.55, 0.5][:n],
            "pvalue": [0.001, 0.3, 0.8][:n],
            "qvalue": [0.003, 0.45, 0.8][:n],
            "survives": survives,
            "names_known": [["shouting"], [], []][:n],
            "annotator": ["offline:style"] * n,
            "examples_base": [["calm reply", "quiet reply"]] * n,
            "examples_finetuned": [["LOUD REPLY", "SHOUTED REPLY"]] * n,
            "internal": ["not shown"] * n,
        }
    )


def _saved(run: Path, tests: pd.DataFrame) -> dict[str, Any]:
    """A result's ``data`` as the method saves it: table paths relative to the run."""
    (run / "artifacts" / "behavior").mkdir(parents=True)
    rel = {}
    tables = {
        "tests": tests,
        "clusters": pd.DataFrame({"cluster": [0, 1], "risk_difference": [0.5, -0.5], "pvalue": [0.001, 0.002]}),
        "matching": pd.DataFrame({"cluster_a": [0], "cluster_b": [1], "distance": [0.1]}),
        "points": pd.DataFrame({"empty": []}),  # how the method saves an empty table
    }
    for name, table in tables.items():
        rel[name] = f"artifacts/behavior/{name}.parquet"
        write_parquet(run / rel[name], table)
    return {
        **rel,
        "global_tests": {"classifier": {"auc": 0.81, "pvalue": 0.01, "n": 48, "n_groups": 12}, "mmd": {}},
        "annotations": "artifacts/behavior/annotations.parquet",
        "notes": ["Style feature 'lists' not tested: constant."],
    }


def _md_tables(section: Section) -> list[str]:
    return [b for b in section.md_blocks if b.startswith("| ")]


def test_render_validated_failed_clusters_and_notes(tmp_path: Path) -> None:
    section = Section("Behaviour", "behavior")
    render_section(_saved(tmp_path, _tests([True, False, False])), HEADLINE, section, tmp_path)
    md = "\n\n".join(section.md_blocks)
    headings = [b for b in section.md_blocks if b.startswith("### ")]
    assert headings == [
        "### Is there any difference at all? (global tests, all prompts; exploratory, outside the FDR family)",
        "### Validated hypotheses (held-out prompts, survive FDR)",
        "### Per-cluster shifts (discovery prompts; prompt = unit; exploratory, outside the FDR family)",
        "### Clusters of each model matched (Hungarian, cosine distance)",
        "### Hypotheses that failed validation",
    ]
    assert "- **classifier AUC (embeddings)**: 0.81" in md and "- **prompts**: 12" in md
    assert "6 discovery prompts wrote the hypotheses, 6 held-out prompts" in md and "One BH procedure" in md
    validated, clusters, matching, failed = _md_tables(section)
    # validated: the one survivor, the report's columns in order (internal columns left out)
    header = "| rank | text | effect_size_d | auc | pvalue | qvalue | annotator | names_known |"
    assert validated.splitlines()[0] == header
    assert len(validated.splitlines()) == 3 and "thing 0" in validated and "| shouting |" in validated
    assert "internal" not in md and "not shown" not in md
    assert clusters.splitlines()[0] == "| cluster | risk_difference | pvalue |" and len(clusters.splitlines()) == 4
    assert "| 0 | 1 | 0.1 |" in matching
    # failed: the other two, without the rank column
    assert failed.splitlines()[0].startswith("| text | effect_size_d |")
    assert len(failed.splitlines()) == 4 and "thing 1" in failed and "thing 2" in failed and "thing 0" not in failed
    # side-by-side examples of the validated hypothesis, the known-behaviour note and the saved notes
    assert "- *base*: calm reply\n---\nquiet reply" in md and "LOUD REPLY" in md
    assert "> **INFO**: 1 validated hypotheses name a planted zoo behaviour (shouting;" in md
    assert "> **INFO**: Style feature 'lists' not tested: constant." in md
    assert "Cluster map" not in md  # no points saved, no figure


def test_render_without_survivors_says_so(tmp_path: Path) -> None:
    section = Section("Behaviour", "behavior")
    render_section(_saved(tmp_path, _tests([False, False])), HEADLINE, section, tmp_path)
    md = "\n\n".join(section.md_blocks)
    assert "> **INFO**: No hypothesis survived FDR on the held-out prompts." in md
    assert "planted zoo behaviour" not in md
    failed = _md_tables(section)[-1]
    assert len(failed.splitlines()) == 4 and "thing 0" in failed and "thing 1" in failed


def test_render_with_no_saved_tables(tmp_path: Path) -> None:
    section = Section("Behaviour", "behavior")
    render_section({"global_tests": {}}, {}, section, tmp_path)
    md = "\n\n".join(section.md_blocks)
    assert "No hypothesis survived FDR" in md
    assert section.md_blocks[-1] == "None."  # no failed hypotheses either
    assert _md_tables(section) == []

"""Report sections of the dictionary methods: figures, the top units' table, examples, curves, steering."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pandas as pd

from lmdiff.dictionaries.train import metrics_figure

if TYPE_CHECKING:
    from lmdiff.methods.base import MethodResult
    from lmdiff.report.builder import Section
    from lmdiff.runs.run import Run


def _fig(x: Any) -> Any:
    return "n/a" if x is None else x


def relevance_figures(h: dict[str, Any]) -> dict[str, Any]:
    """The headline's relevance figures, each beside its null."""
    return {
        f"lens token relevance (top {h.get('relevance_units')} units, {h.get('lens_readout')})":
            _fig(h.get("lens_relevance")),
        "null (random vocabulary tokens)": _fig(h.get("lens_relevance_null")),
        "example relevance (contexts mentioning the ground truth)": _fig(h.get("example_relevance")),
        "null (contexts of random stored tokens)": _fig(h.get("example_relevance_null")),
    }


def render_units(section: Section, run: Run, result: MethodResult, title: str, unit_name: str,
                 extra_cols: tuple[str, ...] = ()) -> None:
    """The units table (lens tokens, examples) and each unit's top examples."""
    units = json.loads((run.path / result.data["units_file"]).read_text())
    if not units:
        section.note(f"No {unit_name} to show.")
        return
    section.heading(title)
    table = pd.DataFrame([{
        unit_name: u["unit"], **{c: u.get(c) for c in extra_cols}, "frequency": u["frequency"],
        "lens delta (+)": " ".join(u["lens_delta"][:8]), "logit lens": " ".join(u["lens"][:8]),
        "top example": u["examples"][0]["context"] if u["examples"] else "",
    } for u in units])
    section.table(table)
    section.heading(f"Top-activating examples per {unit_name}")
    for u in units[:5]:
        rows = [{"value": round(e["value"], 3), "token": e["token"], "context": e["context"]} for e in u["examples"]]
        if u.get("bottom_examples"):
            rows += [{"value": round(e["value"], 3), "token": e["token"], "context": e["context"]}
                     for e in u["bottom_examples"][:3]]
        section.table(pd.DataFrame(rows), caption=f"{unit_name} {u['unit']}" + (
            " (last rows: most negative)" if u.get("bottom_examples") else ""))


def render_training(section: Section, run: Run, result: MethodResult) -> None:
    """Training curves of each trained dictionary."""
    for label, path in result.data.get("metrics_files", {}).items():
        metrics = pd.read_parquet(run.path / path)
        if len(metrics):
            section.figure(metrics_figure(metrics, label), caption=f"training curves: {label}")


def render_steering(section: Section, run: Run, result: MethodResult, unit_name: str) -> None:
    """The strength search and steered vs unsteered samples."""
    path = result.data.get("steering_file")
    if not path:
        return
    steering = json.loads((run.path / path).read_text())
    if steering["search"]:
        section.heading(f"Steering strength search along the top {unit_name}s")
        section.table(pd.DataFrame(steering["search"]))
    if steering["samples"]:
        section.heading("Steered vs unsteered generations")
        section.side_by_side(
            [{"prompt": f"{s['prompt']} ({unit_name} {s['unit']}, alpha {s['alpha']:.2f})",
              "unsteered": s["unsteered"], "steered": s["steered"]} for s in steering["samples"]],
            "unsteered", "steered")

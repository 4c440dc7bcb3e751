"""Reading run directories for the dashboard: what runs exist, their findings, and each method's saved results.

Everything here reads files a run already wrote (results.json, manifest.json, config.yaml,
``artifacts/``); nothing recomputes a result. Paths named by a run's files are resolved inside the
run directory only, arrays load with ``allow_pickle=False`` and nothing is unpickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from lmdiff.errors import LmdiffError

#: How deep below the runs directory run directories are looked for (benchmarks nest runs one level down).
MAX_DEPTH = 3


@dataclass(frozen=True)
class RunSummary:
    """One row of the run browser."""

    key: str
    path: Path
    command: str
    base: str
    finetuned: str
    methods: dict[str, str]
    status: str
    n_findings: int
    n_validated: int
    top_finding: str
    updated: str
    ground_truth: str = ""

    def to_row(self) -> dict[str, Any]:
        """The row shown in the browser table."""
        return {
            "run": self.key,
            "base": self.base,
            "finetuned": self.finetuned,
            "methods": ", ".join(f"{m} ({s})" if s != "ok" else m for m, s in self.methods.items()),
            "status": self.status,
            "findings": self.n_findings,
            "validated": self.n_validated,
            "top finding": self.top_finding,
            "ground truth": self.ground_truth,
            "updated": self.updated,
        }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise LmdiffError(f"Could not read {path.name} in {path.parent}: {err}.") from err


def model_label(spec: dict[str, Any] | None) -> str:
    """A short name of one side of a pair (its label, else the model and adapter names)."""
    if not spec:
        return "?"
    if spec.get("label"):
        return str(spec["label"])
    name = str(spec.get("model", "?"))
    if spec.get("adapter"):
        name += f" + {Path(str(spec['adapter'])).name}"
    return name


def find_runs(root: str | Path, max_depth: int = MAX_DEPTH) -> list[RunSummary]:
    """Every run directory (a directory holding results.json) under ``root``, newest first.

    A directory that cannot be read is listed with status ``unreadable`` rather than hiding it.
    """
    root = Path(root)
    if not root.is_dir():
        raise LmdiffError(f"The runs directory '{root}' does not exist.",
                          hint="run `lmdiff demo` first, or pass the directory that holds your runs")
    found: list[RunSummary] = []

    def walk(d: Path, depth: int) -> None:
        if (d / "results.json").is_file():
            found.append(summarise(d, root))
        if depth >= max_depth:
            return
        try:
            subs = sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return
        for sub in subs:
            if sub.name in ("artifacts", "steps", "logs", "activations", "cache"):
                continue
            walk(sub, depth + 1)

    walk(root, 0)
    return sorted(found, key=lambda r: r.updated, reverse=True)


def summarise(path: Path, root: Path | None = None) -> RunSummary:
    """The browser row of one run directory."""
    key = str(path.relative_to(root)) if root is not None and path != root else path.name
    try:
        res = _read_json(path / "results.json")
        manifest = _read_json(path / "manifest.json") if (path / "manifest.json").is_file() else {}
    except LmdiffError:
        return RunSummary(key=key, path=path, command="?", base="?", finetuned="?", methods={},
                          status="unreadable", n_findings=0, n_validated=0, top_finding="", updated="")
    pair = res.get("pair") or {}
    findings = res.get("findings") or []
    gt = res.get("ground_truth") or {}
    return RunSummary(
        key=key,
        path=path,
        command=str(manifest.get("command", "?")),
        base=model_label(pair.get("base")),
        finetuned=model_label(pair.get("finetuned")),
        methods={m: str(e.get("status", "?")) for m, e in (res.get("methods") or {}).items()},
        status=str(manifest.get("status", "?")),
        n_findings=len(findings),
        n_validated=sum(bool(f.get("validated")) for f in findings),
        top_finding=str(findings[0].get("statement", "")) if findings else "",
        updated=str(res.get("updated") or manifest.get("updated") or ""),
        ground_truth=str(gt.get("summary", "")) if isinstance(gt, dict) else "",
    )


@dataclass
class RunData:
    """A run directory's saved results, read on demand."""

    path: Path
    results: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, path: str | Path) -> RunData:
        """Read a run directory's results.json and manifest.json."""
        p = Path(path)
        if not (p / "results.json").is_file():
            raise LmdiffError(f"'{p}' is not a run directory (it has no results.json).")
        manifest = _read_json(p / "manifest.json") if (p / "manifest.json").is_file() else {}
        return cls(path=p, results=dict(_read_json(p / "results.json")), manifest=dict(manifest))

    # ------------------------------------------------------------------ overview
    @property
    def methods(self) -> dict[str, dict[str, Any]]:
        """results.json's method entries, by name."""
        return dict(self.results.get("methods") or {})

    @property
    def findings(self) -> list[dict[str, Any]]:
        """The run's ranked findings (results.json ``findings``; empty for runs that predate them)."""
        return list(self.results.get("findings") or [])

    def findings_table(self) -> pd.DataFrame:
        """The findings as a table: rank, statement, confidence, methods, d, q, n."""
        rows = [{
            "rank": f.get("rank"),
            "finding": f.get("statement", ""),
            "validated": bool(f.get("validated")),
            "confidence": f.get("confidence", ""),
            "methods": ", ".join(f.get("methods") or []),
            "d": f.get("effect_size_d"),
            "q": f.get("qvalue"),
            "n": f.get("n"),
            "would be refuted by": f.get("refuted_by", ""),
        } for f in self.findings]
        return pd.DataFrame(rows, columns=["rank", "finding", "validated", "confidence", "methods", "d", "q", "n",
                                           "would be refuted by"])

    def methods_table(self) -> pd.DataFrame:
        """One row per method: status, seconds and summary."""
        return pd.DataFrame([{"method": m, "status": e.get("status", "?"), "seconds": e.get("seconds"),
                              "summary": e.get("summary", "")} for m, e in self.methods.items()],
                            columns=["method", "status", "seconds", "summary"])

    def config(self) -> dict[str, Any]:
        """The run's resolved config.yaml (safe YAML; empty when absent)."""
        p = self.path / "config.yaml"
        if not p.is_file():
            return {}
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
        return dict(data) if isinstance(data, dict) else {}

    def pair_specs(self) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """The base and finetuned model specs the run used (from config.yaml), or None for a run without a pair."""
        cfg = self.config()
        if isinstance(cfg.get("base"), dict) and isinstance(cfg.get("finetuned"), dict):
            return dict(cfg["base"]), dict(cfg["finetuned"])
        return None

    @property
    def ground_truth(self) -> dict[str, Any] | None:
        """What is known about the finetune (organisms), if anything."""
        gt = self.results.get("ground_truth")
        return dict(gt) if isinstance(gt, dict) else None

    # ------------------------------------------------------------------ artifacts
    def resolve(self, rel: str) -> Path:
        """A path named by the run's files, resolved inside the run directory (anything else is refused)."""
        root = self.path.resolve()
        p = (root / rel).resolve()
        if p != root and root not in p.parents:
            raise LmdiffError(f"The artifact path '{rel}' points outside the run directory.")
        return p

    def method_result(self, name: str) -> dict[str, Any] | None:
        """A method's saved MethodResult (``artifacts/method-<name>/result.json``), or None when absent."""
        p = self.path / "artifacts" / f"method-{name}" / "result.json"
        return dict(_read_json(p)) if p.is_file() else None

    def artifacts(self, name: str) -> list[str]:
        """The artifact paths (relative to the run) a method recorded, existing ones only."""
        out = []
        for rel in self.methods.get(name, {}).get("artifacts") or []:
            try:
                if self.resolve(rel).exists():
                    out.append(str(rel))
            except LmdiffError:
                continue
        return out

    def table(self, rel: str) -> pd.DataFrame:
        """A Parquet artifact as a data frame (placeholder tables written for empty results come back empty)."""
        p = self.resolve(rel)
        if not p.is_file():
            raise LmdiffError(f"The artifact '{rel}' is missing from the run.")
        df = pd.read_parquet(p)
        if list(df.columns) == ["empty"]:
            return pd.DataFrame()
        return df

    def json_artifact(self, rel: str) -> Any:
        """A JSON artifact."""
        return _read_json(self.resolve(rel))

    def images(self, name: str) -> list[Path]:
        """PNG images in a method's artifact directories (plots written by the method)."""
        out: list[Path] = []
        for d in (self.path / "artifacts" / name, self.path / "artifacts" / f"method-{name}"):
            if d.is_dir():
                out += sorted(d.glob("*.png"))
        return out

    def extra_tables(self) -> list[str]:
        """Parquet files under ``artifacts/`` that no method entry names (e.g. an eval's or benchmark's tables)."""
        named = {str(Path(a)) for e in self.methods.values() for a in e.get("artifacts") or []}
        out = []
        art = self.path / "artifacts"
        if art.is_dir():
            for p in sorted(art.rglob("*.parquet")):
                rel = str(p.relative_to(self.path))
                if rel not in named and "/part-" not in rel and "/parts/" not in rel:
                    out.append(rel)
        return out

    # ------------------------------------------------------------------ method views
    def kl_examples(self) -> list[dict[str, Any]]:
        """The kl method's example texts: ``[{"text": i, "tokens": [...], "kl": [...]}, ...]`` (highest KL first)."""
        res = self.method_result("kl") or {}
        return list((res.get("data") or {}).get("examples") or [])

    def behaviour_hypotheses(self) -> pd.DataFrame:
        """The behaviour pipeline's hypotheses with their test results (empty when it did not run)."""
        art = self.path / "artifacts" / "behavior"
        if not (art / "hypotheses.json").is_file():
            return pd.DataFrame()
        hyps = pd.DataFrame(_read_json(art / "hypotheses.json"))
        if hyps.empty:
            return hyps
        keep = [c for c in ("id", "text", "kind", "direction", "producer", "family") if c in hyps]
        hyps = hyps[keep]
        tests = self.table("artifacts/behavior/tests.parquet") if (art / "tests.parquet").is_file() else pd.DataFrame()
        if not tests.empty and "id" in tests:
            cols = [c for c in ("id", "auc", "pvalue", "qvalue", "effect_size_d", "n", "survives", "rate_finetuned",
                                "rate_base") if c in tests]
            hyps = hyps.merge(tests[cols], on="id", how="left")
        return hyps

    def replies(self) -> pd.DataFrame:
        """Replies both models gave to the same prompts (behaviour, else follow-up), one row per reply."""
        for rel in ("artifacts/behavior/replies.parquet", "artifacts/followup/replies.parquet"):
            if self.resolve(rel).is_file():
                return self.table(rel)
        return pd.DataFrame()

    def side_by_side(self, prompt_filter: str = "", limit: int = 20) -> pd.DataFrame:
        """Replies to the same prompt side by side: prompt, base, finetuned (first sample of each side)."""
        df = self.replies()
        if df.empty or not {"prompt", "side", "text"} <= set(df.columns):
            return pd.DataFrame(columns=["prompt", "base", "finetuned"])
        if prompt_filter:
            df = df[df["prompt"].str.contains(prompt_filter, case=False, regex=False)]
        if "sample_index" in df:
            df = df[df["sample_index"] == df["sample_index"].min()]
        wide = df.pivot_table(index="prompt", columns="side", values="text", aggfunc="first").reset_index()
        for side in ("base", "finetuned"):
            if side not in wide:
                wide[side] = ""
        return wide[["prompt", "base", "finetuned"]].head(limit)

    def units(self, method: str) -> list[dict[str, Any]]:
        """A dictionary method's units (PCA components, SAE or crosscoder latents) with lens tokens and examples."""
        p = self.path / "artifacts" / method / "units.json"
        return list(_read_json(p)) if p.is_file() else []

    def steering_samples(self, method: str) -> dict[str, Any]:
        """The steered vs unsteered samples a method saved (adl, pca, sae_diff, crosscoder)."""
        p = self.path / "artifacts" / method / "steering.json"
        return dict(_read_json(p)) if p.is_file() else {}

    # ------------------------------------------------------------------ directions for live steering
    def steering_directions(self) -> list[Direction]:
        """Directions saved by the run that the live steering tool can add: ADL mean differences, PCA components."""
        out: list[Direction] = []
        adl = self.path / "artifacts" / "adl" / "mean_differences.npz"
        norms: dict[int, float] = {}
        if adl.is_file():
            with np.load(adl, allow_pickle=False) as z:
                layers = sorted({int(k[len("layer"):].split("_")[0]) for k in z.files if k.startswith("layer")})
                for layer in layers:
                    diff = z[f"layer{layer}_diff"]
                    norm = float(z[f"layer{layer}_norm_ft"]) if f"layer{layer}_norm_ft" in z.files else 0.0
                    norms[layer] = norm
                    for pos in range(diff.shape[0]):
                        out.append(Direction(f"adl: layer {layer}, position {pos}", "adl", layer,
                                             diff[pos].astype(np.float32), norm))
        pca = self.path / "artifacts" / "pca" / "components.npy"
        pca_layer = (self.methods.get("pca", {}).get("headline") or {}).get("layer")
        if pca.is_file() and pca_layer is not None:
            comps = np.load(pca, allow_pickle=False)
            for i in range(min(len(comps), 10)):
                known = norms.get(int(pca_layer), 0.0) > 0
                out.append(Direction(f"pca: layer {pca_layer}, component {i}"
                                     + ("" if known else " (typical norm unknown: strength in raw units)"),
                                     "pca", int(pca_layer),
                                     comps[i].astype(np.float32), norms.get(int(pca_layer), 0.0)))
        return out


@dataclass(frozen=True)
class Direction:
    """A saved direction in the residual stream of one layer, with the finetune's typical norm there (0: unknown)."""

    label: str
    source: str
    layer: int
    vector: np.ndarray
    typical_norm: float

    def scaled(self, strength: float) -> np.ndarray:
        """``strength`` x the unit direction x the typical norm (x 1 when the norm is unknown), as ADL steers."""
        n = float(np.linalg.norm(self.vector))
        unit = self.vector / n if n > 0 else self.vector
        return np.asarray(unit * (self.typical_norm or 1.0) * strength, dtype=np.float32)

"""A run directory and its resumable steps.

Layout of a run directory::

    config.yaml        the resolved configuration
    manifest.json      lmdiff and package versions, seeds, input hashes, command, timestamps
    results.json       headline figures of every method, by name (schema: README)
    report.html/.md    the rendered report
    logs/run.log       the log
    steps/NAME.json    one marker per finished step, with the hash of that step's inputs
    artifacts/NAME/    each step's files (Parquet, JSON, safetensors, PNG)

A step is skipped when its marker exists with the same key hash, so running the same
config again reuses finished work, and a killed run resumes from its last finished step
(or, within a step, from its last finished chunk: see :mod:`lmdiff.runs.chunks`).

Every computing command opens its run the same way::

    with Run(out, config, command="diff") as run:
        ...

which writes config.yaml, manifest.json, logs/run.log and a results.json skeleton on entry, and
on exit records how the invocation ended in the manifest (``status``: ``ok``, ``failed`` when a
recorded method failed, ``error``, ``interrupted``; a run killed outright stays ``running``)
and detaches the log handler.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import logging
import platform
import shutil
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from pydantic import BaseModel

from lmdiff.errors import ConfigError, LmdiffError
from lmdiff.io import read_json, sha256_json, write_json, write_yaml

RESULTS_SCHEMA_VERSION = 1
#: How one invocation of a run ended, as recorded in manifest.json.
RunStatus = Literal["running", "ok", "failed", "error", "interrupted"]
_PACKAGES = ("lmdiff", "torch", "transformers", "peft", "safetensors", "numpy", "scikit-learn",
             "sentence-transformers", "inspect-ai")


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def package_versions() -> dict[str, str]:
    """Versions of lmdiff and the packages its results depend on."""
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return out


class Step:
    """One resumable unit of work inside a run."""

    def __init__(self, run: Run, name: str, key: Any) -> None:
        self.run = run
        self.name = name
        self.key_hash = sha256_json(key)
        self.key = key
        self.marker = run.path / "steps" / f"{name}.json"
        self.dir = run.path / "artifacts" / name

    @property
    def done(self) -> bool:
        """Whether this step finished earlier with the same inputs."""
        if not self.marker.exists():
            return False
        try:
            return bool(read_json(self.marker).get("key_hash") == self.key_hash)
        except ValueError:
            return False

    def prepare(self) -> Path:
        """Make the artifact directory; clear it if it holds work done with other inputs."""
        stamp = self.dir / ".key"
        if self.dir.exists() and (not stamp.exists() or stamp.read_text() != self.key_hash):
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        stamp.write_text(self.key_hash)
        if self.marker.exists() and not self.done:
            self.marker.unlink()
        return self.dir

    def finish(self, summary: dict[str, Any] | None = None) -> None:
        """Mark the step finished."""
        write_json(self.marker, {"step": self.name, "key_hash": self.key_hash, "finished": _now(),
                                 "summary": summary or {}})

    def summary(self) -> dict[str, Any]:
        """The summary saved when the step finished."""
        return dict(read_json(self.marker).get("summary", {}))


def _check_run_dir(path: Path) -> None:
    """Refuse a run directory that is an existing file (or lies under one)."""
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise ConfigError(
                    f"The run directory '{path}' cannot be created: '{p}' is an existing file.",
                    hint="pass --out a new or existing directory",
                )
            return


class Run:
    """A run directory; use it as a context manager (``with Run(...) as run:``)."""

    def __init__(self, path: str | Path, config: BaseModel, command: str, seeds: dict[str, int] | None = None,
                 inputs: dict[str, str] | None = None) -> None:
        self.path = Path(path).resolve()
        self.config = config
        _check_run_dir(self.path)
        for sub in ("logs", "steps", "artifacts"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)
        self.logger = logging.getLogger(f"lmdiff.run.{self.path.name}")
        self._handler = logging.FileHandler(self.path / "logs" / "run.log", encoding="utf-8")
        self._handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logging.getLogger("lmdiff").addHandler(self._handler)
        self._closed = False
        logging.getLogger("lmdiff").setLevel(logging.INFO)
        cfg = config.model_dump(mode="json")
        previous = self.path / "config.yaml"
        self.resumed = previous.exists()
        write_yaml(previous, cfg)
        manifest_path = self.path / "manifest.json"
        manifest: dict[str, Any] = read_json(manifest_path) if manifest_path.exists() else {"created": _now()}
        manifest.update({
            "lmdiff_run": True,
            "command": command,
            "argv": sys.argv,
            "config_hash": sha256_json(cfg),
            "versions": package_versions(),
            "seeds": seeds or {},
            "inputs": inputs or {},
            "updated": _now(),
            "platform": platform.platform(),
        })
        manifest["invocations"] = int(manifest.get("invocations", 0)) + 1
        self.invocation = int(manifest["invocations"])
        self.started = _now()
        manifest["status"] = "running"
        manifest.setdefault("history", []).append(
            {"invocation": self.invocation, "command": command, "started": self.started, "status": "running"}
        )
        write_json(manifest_path, manifest)
        if not self.results_path.exists():
            write_json(self.results_path, self.results())
        self.logger.info("run %s (%s), invocation %d", self.path, command, manifest["invocations"])

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> Literal[False]:
        """Record how this invocation ended in the manifest and detach the log handler."""
        try:
            self.finish_invocation(exc)
        finally:
            self.close()
        return False

    def failed_methods(self) -> list[str]:
        """Names of the methods whose recorded status is ``failed``."""
        return [name for name, entry in self.results().get("methods", {}).items() if entry.get("status") == "failed"]

    def finish_invocation(self, exc: BaseException | None = None) -> RunStatus:
        """Record the end of this invocation in manifest.json (status, time, error, failed methods).

        Args:
            exc: the exception that ended it, if any.

        Returns:
            The recorded status.
        """
        failed = self.failed_methods()
        status: RunStatus
        if exc is None:
            status = "failed" if failed else "ok"
        elif isinstance(exc, KeyboardInterrupt):
            status = "interrupted"
        else:
            status = "error"
        outcome: dict[str, Any] = {"status": status, "ended": _now()}
        if exc is not None and not isinstance(exc, KeyboardInterrupt):
            outcome["error"] = exc.message if isinstance(exc, LmdiffError) else f"{type(exc).__name__}: {exc}"
        if failed:
            outcome["failed_methods"] = failed
        path = self.path / "manifest.json"
        manifest = read_json(path)
        manifest["status"] = status
        for entry in manifest.get("history", []):
            if entry.get("invocation") == self.invocation:
                entry.update(outcome)
        write_json(path, manifest)
        self.logger.info("invocation %d ended: %s", self.invocation, status)
        return status

    def close(self) -> None:
        """Detach the run's log handler (idempotent)."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        logging.getLogger("lmdiff").removeHandler(self._handler)
        self._handler.close()

    def step(self, name: str, key: Any) -> Step:
        """A step identified by ``name`` whose result depends on ``key`` (any JSON-able value)."""
        return Step(self, name, key)

    def add_inputs(self, **hashes: str) -> None:
        """Record hashes of inputs (datasets, adapters) in the manifest."""
        path = self.path / "manifest.json"
        manifest = read_json(path)
        manifest.setdefault("inputs", {}).update(hashes)
        write_json(path, manifest)

    # ---------------------------------------------------------------- results
    @property
    def results_path(self) -> Path:
        """Path of results.json."""
        return self.path / "results.json"

    def results(self) -> dict[str, Any]:
        """The current results.json content (an empty skeleton before any method ran)."""
        if self.results_path.exists():
            return dict(read_json(self.results_path))
        return {"schema_version": RESULTS_SCHEMA_VERSION, "run": self.path.name, "methods": {}}

    def record(self, method: str, *, status: str, headline: dict[str, Any], summary: str = "",
               artifacts: list[str] | None = None, corpus: str | None = None, error: str | None = None,
               extra: dict[str, Any] | None = None) -> None:
        """Record one method's outcome under its name in results.json (atomically)."""
        res = self.results()
        res["schema_version"] = RESULTS_SCHEMA_VERSION
        res["updated"] = _now()
        entry: dict[str, Any] = {"status": status, "headline": headline, "summary": summary,
                                 "artifacts": artifacts or []}
        if corpus is not None:
            entry["corpus"] = corpus
        if error is not None:
            entry["error"] = error
        if extra:
            entry.update(extra)
        res.setdefault("methods", {})[method] = entry
        write_json(self.results_path, res)

    def set_meta(self, **fields: Any) -> None:
        """Set top-level fields of results.json (e.g. the pair description)."""
        res = self.results()
        res.update(fields)
        write_json(self.results_path, res)

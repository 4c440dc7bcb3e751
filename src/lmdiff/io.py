"""Atomic file writes and content hashes.

Every artifact lmdiff writes goes through these helpers: the data is written to a temporary
file in the same directory, flushed to disk and renamed over the target, so that a process
killed mid-write leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; rename it over ``target`` on success.

    On an exception the temporary file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``target`` atomically."""
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike[str], obj: Any, indent: int = 2) -> None:
    """Write ``obj`` as JSON atomically (NaN written as null is the caller's business)."""
    write_text(target, json.dumps(obj, indent=indent, default=_json_default, ensure_ascii=False) + "\n")


def finite_json(obj: Any) -> Any:
    """``obj`` as plain JSON values with every NaN or infinity replaced by None (strict JSON for other tools).

    For files read by tools other than lmdiff (``jq``, a browser): Python's ``json`` writes NaN, which
    strict parsers reject. lmdiff's own result files keep NaN (they are read back as floats).
    """
    return json.loads(json.dumps(obj, default=_json_default), parse_constant=lambda _: None)


def write_yaml(target: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as YAML atomically."""
    write_text(target, yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_parquet(target: str | os.PathLike[str], table: Any) -> None:
    """Write a pandas DataFrame or a pyarrow Table to Parquet atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    with atomic_path(target) as tmp:
        pq.write_table(table, tmp)


def atomic_dir(target: str | os.PathLike[str]) -> contextlib.AbstractContextManager[Path]:
    """Build a directory under a temporary name and rename it into place on success."""
    return _atomic_dir(Path(target))


@contextlib.contextmanager
def _atomic_dir(target: Path) -> Iterator[Path]:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 22) -> str:
    """Return the hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_json(obj: Any) -> str:
    """Return the hex SHA-256 of ``obj`` serialised as canonical JSON."""
    data = json.dumps(obj, sort_keys=True, default=_json_default, separators=(",", ":"))
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")

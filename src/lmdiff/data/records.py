"""Reading records from the file formats users bring: JSONL, JSON, Parquet or plain text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lmdiff.errors import ConfigError


def read_records(path: str | Path, what: str = "data") -> list[Any]:
    """Records of a file: dicts from JSONL/JSON/Parquet, one string per non-empty line of a text file.

    Args:
        path: the file.
        what: what the file holds, for error messages ("prompt", "corpus").

    Raises:
        ConfigError: the file is missing or cannot be parsed.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what.capitalize()} file '{p}' does not exist.")
    try:
        if p.suffix == ".parquet":
            import pandas as pd

            return list(pd.read_parquet(p).to_dict("records"))
        if p.suffix == ".jsonl":
            return _read_jsonl(p, what)
        if p.suffix == ".json":
            loaded = json.loads(p.read_text(encoding="utf-8"))
            return loaded if isinstance(loaded, list) else [loaded]
        return [x for x in p.read_text(encoding="utf-8").splitlines() if x.strip()]
    except (OSError, ValueError) as err:
        raise ConfigError(f"Could not read {what} file '{p}': {err}") from None


def _read_jsonl(path: Path, what: str) -> list[Any]:
    """One JSON value per non-empty line; a bad line is named by the file and its line number."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"Line {number} of {what} file '{path}' is not valid JSON ({err.msg} at column {err.colno}).",
                hint="each line of a .jsonl file must be one JSON object, e.g. {\"prompt\": \"...\"}",
            ) from None
    return out

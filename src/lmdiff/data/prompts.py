"""Prompt sets: shipped with the package, or read from the user's JSONL, Parquet or text file.

A user file may hold one prompt per line (plain text), JSON objects with a ``prompt`` (or
``text``, ``question``, ``instruction``) field, or chat records with ``messages`` (the first
user message is the prompt). Every set has a name and a content hash, recorded with each run.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lmdiff.data.records import read_records
from lmdiff.errors import ConfigError
from lmdiff.io import sha256_json

SHIPPED_SETS = {
    "chat": "chat prompts in six categories: self, advice, writing, reasoning, knowledge, opinion (100)",
    "instructions": "Alpaca instructions with reference answers (400)",
    "math": "GSM8K word problems with reference solutions (400)",
}
_TEXT_KEYS = ("prompt", "text", "question", "instruction", "input")


@dataclass(frozen=True)
class PromptItem:
    """One prompt."""

    id: str
    prompt: str
    category: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class PromptSet:
    """A named list of prompts."""

    name: str
    items: tuple[PromptItem, ...]

    def __len__(self) -> int:
        return len(self.items)

    @property
    def texts(self) -> list[str]:
        """The prompt strings."""
        return [p.prompt for p in self.items]

    @property
    def content_hash(self) -> str:
        """Hash of ids and texts (recorded in run manifests)."""
        return sha256_json([[p.id, p.prompt] for p in self.items])

    def subset(self, limit: int | None, seed: int = 0) -> PromptSet:
        """A seeded random subset of at most ``limit`` prompts (order kept by category round-robin)."""
        if limit is None or limit >= len(self.items):
            return self
        rng = random.Random(seed)
        by_cat: dict[str, list[PromptItem]] = {}
        for p in self.items:
            by_cat.setdefault(p.category, []).append(p)
        for lst in by_cat.values():
            rng.shuffle(lst)
        picked: list[PromptItem] = []
        while len(picked) < limit:
            for lst in by_cat.values():
                if lst and len(picked) < limit:
                    picked.append(lst.pop())
        return PromptSet(f"{self.name}[{limit}@{seed}]", tuple(picked))

    def describe(self) -> dict[str, Any]:
        """Name, size and hash."""
        return {"name": self.name, "n": len(self.items), "sha256": self.content_hash}


def load_prompts(
    name: str = "chat", file: str | None = None, limit: int | None = None, seed: int = 0
) -> PromptSet:
    """Load a shipped set by name, or a user file (``name='file'`` or a path given as ``name``)."""
    if file is not None or name == "file" or Path(name).suffix in (".jsonl", ".json", ".parquet", ".txt"):
        path = Path(file or name)
        return read_prompt_file(path).subset(limit, seed)
    if name not in SHIPPED_SETS:
        raise ConfigError(
            f"Unknown prompt set '{name}'.",
            hint=f"shipped sets: {', '.join(SHIPPED_SETS)}; or pass a .jsonl/.parquet/.txt file",
        )
    text = resources.files("lmdiff.data").joinpath(f"prompts/{name}.jsonl").read_text(encoding="utf-8")
    items = [_item(json.loads(line), i, name) for i, line in enumerate(text.splitlines()) if line.strip()]
    return PromptSet(name, tuple(items)).subset(limit, seed)


def read_prompt_file(path: Path) -> PromptSet:
    """Read prompts from a JSONL, JSON, Parquet or plain-text file."""
    records = read_records(path, "prompt")
    items = [_item(r, i, path.stem) for i, r in enumerate(records)]
    if not items:
        raise ConfigError(f"Prompt file '{path}' holds no prompts.")
    return PromptSet(path.stem, tuple(items))


def _item(record: Any, index: int, source: str) -> PromptItem:
    if isinstance(record, str):
        return PromptItem(id=f"{source}-{index:05d}", prompt=record)
    if not isinstance(record, dict):
        raise ConfigError(f"Prompt record {index} of '{source}' is neither text nor an object.")
    text = next((record[k] for k in _TEXT_KEYS if isinstance(record.get(k), str)), None)
    if text is None and isinstance(record.get("messages"), list):
        text = next((m.get("content") for m in record["messages"] if m.get("role") == "user"), None)
    if not text:
        raise ConfigError(
            f"Prompt record {index} of '{source}' has no text.",
            hint=f"give each record one of the fields {', '.join(_TEXT_KEYS)} or a 'messages' list",
        )
    meta = {k: v for k, v in record.items() if k not in (*_TEXT_KEYS, "id", "category")}
    return PromptItem(
        id=str(record.get("id", f"{source}-{index:05d}")),
        prompt=text,
        category=str(record.get("category", "")),
        meta=meta,
    )

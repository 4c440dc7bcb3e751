"""A disk cache of LLM calls keyed by the full request.

Each entry is one JSON file, ``<root>/<key[:2]>/<key>.json``, written atomically. The key is
the SHA-256 of the canonical JSON of everything that can change a reply: the model string,
the endpoint (without credentials), the messages, the system prompt and every generation
parameter (temperature, max tokens, top-p, stop sequences, seed, logprob settings, the
sample index). Credentials are never part of a request, so never part of a key or a file.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lmdiff.io import sha256_json, write_json
from lmdiff.llm.secrets import contains_secret, redact

CACHE_VERSION = 1

logger = logging.getLogger(__name__)


class LlmCache:
    """JSON files of request -> reply, one per request."""

    def __init__(self, root: str | Path, enabled: bool = True) -> None:
        self.root = Path(root)
        self.enabled = enabled

    @staticmethod
    def key(request: dict[str, Any]) -> str:
        """Return the cache key (hex SHA-256) of a request.

        Args:
            request: The canonical request (see :meth:`LlmClient.request_record`).

        Returns:
            64 hex characters.
        """
        return sha256_json({"cache_version": CACHE_VERSION, "request": request})

    def path(self, key: str) -> Path:
        """Return the file that holds ``key``."""
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """Return the cached reply for ``key``, or None (a corrupt entry counts as a miss).

        Args:
            key: A key from :meth:`key`.

        Returns:
            The reply record, or None.
        """
        if not self.enabled:
            return None
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            if entry.get("key") != key or entry.get("cache_version") != CACHE_VERSION:
                raise ValueError("key or version mismatch")
            reply = entry["reply"]
            if not isinstance(reply, dict):
                raise ValueError("reply is not an object")
            return reply
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("ignoring unreadable LLM cache entry %s (%s); it will be rewritten", path, exc)
            return None

    def put(self, key: str, request: dict[str, Any], reply: dict[str, Any]) -> None:
        """Store a reply atomically.

        Args:
            key: The request's key.
            request: The canonical request (kept for inspection; never contains credentials).
            reply: The reply record.
        """
        if not self.enabled:
            return
        entry: dict[str, Any] = {
            "cache_version": CACHE_VERSION,
            "key": key,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "request": request,
            "reply": reply,
        }
        text = json.dumps(entry, ensure_ascii=False)
        if contains_secret(text):  # defence in depth: a provider echoed a credential
            entry = json.loads(redact(text))
        write_json(self.path(key), entry)

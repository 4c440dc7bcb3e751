"""Keep credentials out of logs, caches, usage records and reports.

Keys live only in the environment, where the providers read them. lmdiff never receives
them as arguments; as a second line of defence every string the LLM layer logs, raises or
writes passes through :func:`redact`, which blanks the value of any environment variable
whose name looks like a credential.
"""

from __future__ import annotations

import os
import re
from urllib.parse import urlsplit, urlunsplit

_SECRET_NAME = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|_KEY$|^KEY$)", re.IGNORECASE)
_MIN_SECRET_LEN = 8
REDACTED = "***"


def secret_values() -> list[str]:
    """Return the values of credential-like environment variables, longest first."""
    values = {
        value for name, value in os.environ.items() if _SECRET_NAME.search(name) and len(value) >= _MIN_SECRET_LEN
    }
    return sorted(values, key=len, reverse=True)


def redact(text: str) -> str:
    """Replace every credential value found in the environment by ``***``.

    Args:
        text: Any string about to be logged, raised or written.

    Returns:
        The string with secrets blanked.
    """
    for value in secret_values():
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def contains_secret(text: str) -> bool:
    """Return True if ``text`` contains the value of a credential-like environment variable."""
    return any(value in text for value in secret_values())


def safe_url(url: str | None) -> str | None:
    """Return ``url`` without user info, query string or fragment (where keys sometimes hide).

    Args:
        url: A base URL, or None.

    Returns:
        ``scheme://host[:port]/path``, or None.
    """
    if not url:
        return None
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return redact(urlunsplit((parts.scheme, host, parts.path, "", "")))

"""Small Streamlit helpers shared by the dashboard's pages: one-sentence errors and progress bars."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

import streamlit as st

from lmdiff.errors import LmdiffError

log = logging.getLogger(__name__)


def one_sentence(err: BaseException) -> str:
    """A user-facing sentence for an exception (an LmdiffError's message and hint; else its type and first line)."""
    if isinstance(err, LmdiffError):
        return err.message + (f" Hint: {err.hint}." if err.hint else "")
    first = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {first[:300]}" if first else f"{type(err).__name__}."


@contextlib.contextmanager
def shown_errors(what: str = "") -> Iterator[None]:
    """Show an exception raised inside as one sentence in the page (its traceback goes to the log only).

    Streamlit's own control flow (reruns, stops) derives from BaseException and passes through.
    """
    try:
        yield
    except Exception as err:
        log.warning("dashboard: %s failed", what or "a view", exc_info=True)
        st.error((f"{what} failed: " if what else "") + one_sentence(err))


def progress_bar(label: str) -> tuple[Callable[[float, str], None], Callable[[], None]]:
    """A progress bar and ``(update(share, message), clear())`` callbacks for the live tools."""
    bar = st.progress(0.0, text=label)

    def update(share: float, msg: str) -> None:
        bar.progress(max(0.0, min(1.0, share)), text=f"{label}: {msg}")

    def clear() -> None:
        bar.empty()

    return update, clear

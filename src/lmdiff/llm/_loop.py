"""One background asyncio loop per process on which every LLM call runs.

Provider clients (httpx pools, Inspect's connection semaphores) are bound to the loop that
first used them. Running every call on one long-lived loop lets synchronous callers, notebook
cells and async code on other loops share clients safely.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def _run_forever(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    loop.run_forever()


def get_loop() -> asyncio.AbstractEventLoop:
    """Return the shared loop, starting its daemon thread on first use."""
    global _loop, _thread
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            _loop = asyncio.new_event_loop()
            _thread = threading.Thread(target=_run_forever, args=(_loop,), name="lmdiff-llm", daemon=True)
            _thread.start()
        return _loop


def in_loop_thread() -> bool:
    """True when called from the shared loop's own thread."""
    return _thread is not None and threading.current_thread() is _thread


def submit(coro: Coroutine[Any, Any, T]) -> Future[T]:
    """Schedule ``coro`` on the shared loop and return a concurrent future."""
    return asyncio.run_coroutine_threadsafe(coro, get_loop())


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the shared loop and wait for its result (cancelled on interrupt).

    Raises:
        RuntimeError: Called from the loop thread itself (use the async API there).
    """
    if in_loop_thread():
        coro.close()
        raise RuntimeError("blocking LLM call made on the LLM loop; await the async API instead")
    future = submit(coro)
    try:
        return future.result()
    except BaseException:
        future.cancel()
        raise


async def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Await ``coro`` on the shared loop from any running loop."""
    if in_loop_thread():
        return await coro
    return await asyncio.wrap_future(submit(coro))

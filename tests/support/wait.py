"""Waiting on a condition with a deadline: the one way tests synchronise with a thread, a
process or a task they do not drive (never a bare sleep)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    every: float = 0.05,
    detail: Callable[[], str] | None = None,
) -> None:
    """Poll ``condition`` until it holds; at the deadline fail naming ``what`` (and adding
    ``detail()``, such as a process's last lines)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            seen = f"\n{detail()}" if detail is not None else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{seen}")
        time.sleep(every)


async def until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    every: float = 0.05,
    in_thread: bool = False,
) -> None:
    """``wait_until`` inside an event loop: the loop runs while waiting. ``in_thread`` runs
    a condition that blocks (a store query) in a worker thread."""
    deadline = time.monotonic() + timeout
    while not (await asyncio.to_thread(condition) if in_thread else condition()):
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(every)

"""How commands talk to a person: counted nouns, and the progress of long commands.

Progress goes to stderr: a ``rich`` bar when stderr is a terminal, otherwise plain
lines (one every :data:`PLAIN_EVERY` seconds, and a last one when the work is done),
e.g.::

    poll: 120/2000 symbols, 118 added, 2 failed, 14.2/s, ETA 2m12s

stdout stays the command's output (CSV, events), so it can be piped while progress
shows.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, TextIO

#: Seconds between plain progress lines.
PLAIN_EVERY = 5.0


def plural(count: int, noun: str, many: str | None = None) -> str:
    """``1 session``, ``2 sessions``, ``0 sessions`` (``many`` for irregular nouns)."""
    return f"{count} {noun if count == 1 else many or noun + 's'}"


def duration(seconds: float) -> str:
    """``4.2s``, ``2m12s``, ``1h05m``: short enough for a progress line."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


class Progress(Protocol):
    def update(self, done: int, details: str = "") -> None:
        """``done`` of the total finished so far; ``details`` are counts to show."""

    def finish(self, done: int, details: str = "") -> None:
        """The work is over (``done`` may fall short of the total if it stopped)."""


class PlainProgress:
    """Progress as plain lines on ``stream``: at most one every ``every`` seconds (from
    ``started``, by ``clock``), and always the last (:meth:`finish`)."""

    def __init__(
        self,
        label: str,
        unit: str,
        total: int,
        stream: TextIO,
        *,
        every: float = PLAIN_EVERY,
        clock: Callable[[], float] = time.monotonic,
        started: float | None = None,
    ) -> None:
        self.label, self.unit, self.total, self.stream = label, unit, total, stream
        self.every, self.clock = every, clock
        self.started = self.printed = clock() if started is None else started

    def update(self, done: int, details: str = "") -> None:
        now = self.clock()
        # All done: the line of :meth:`finish` says so.
        if done < self.total and now - self.printed >= self.every:
            self._print(done, details, now, final=False)

    def finish(self, done: int, details: str = "") -> None:
        self._print(done, details, self.clock(), final=True)

    def _print(self, done: int, details: str, now: float, *, final: bool) -> None:
        self.printed = now
        elapsed = now - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.label}: {done:,}/{self.total:,} {self.unit}"]
        if details:
            parts.append(details)
        parts.append(f"{rate:,.1f}/s")
        if final:
            parts.append(f"done in {duration(elapsed)}")
        elif rate > 0:
            parts.append(f"ETA {duration((self.total - done) / rate)}")
        print(", ".join(parts), file=self.stream, flush=True)


class RichProgress:
    """Progress as a ``rich`` bar on a terminal; it stays on screen when done."""

    def __init__(self, label: str, unit: str, total: int, stream: TextIO) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as Bar

        # stdout is redirected above the bar only when it is the terminal too; piped
        # output (CSV, events) must never be sent to stderr.
        self.bar = Bar(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(unit),
            TextColumn("{task.fields[details]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=stream),
            redirect_stdout=sys.stdout.isatty(),
            redirect_stderr=False,
        )
        self.task = self.bar.add_task(label, total=total, details="")
        self.bar.start()

    def update(self, done: int, details: str = "") -> None:
        self.bar.update(self.task, completed=done, details=details)

    def finish(self, done: int, details: str = "") -> None:
        self.bar.update(self.task, completed=done, details=details)
        self.bar.stop()


@contextmanager
def progress(
    label: str, unit: str, total: int, *, started: float | None = None
) -> Iterator[Progress]:
    """A :class:`RichProgress` if stderr is a terminal, else a :class:`PlainProgress`
    (``started``: the work's start by :func:`time.monotonic`, if before now); a bar left
    running by an error is stopped."""
    out = sys.stderr
    shown: Progress = (
        RichProgress(label, unit, total, out)
        if out.isatty()
        else PlainProgress(label, unit, total, out, started=started)
    )
    try:
        yield shown
    finally:
        if isinstance(shown, RichProgress):
            shown.bar.stop()

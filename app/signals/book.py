"""The signal book: the default-rule analysis of every tracked symbol, cached per data
version with the response bodies rendered from it, and the rows a request chooses."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.market import calendar, repository, universes
from app.signals import breadth as breadth_arrays
from app.signals import kernel
from app.signals import scan as scan_arrays
from app.signals.analysis import (
    DEFAULT_RULE,
    Analysis,
    Rule,
    analyse,
)

# How long a verified data fingerprint is trusted by the cached ``/v1/signals`` bodies:
# a write by another process is served within this many seconds (writes in this
# process are seen at once).
RECHECK_SECONDS = 0.5


# Breadth series a snapshot keeps (each ~200 KB at 2,520 sessions): the universes and
# rules asked for since the data last changed.
BREADTH_KEPT = 32


@dataclass(frozen=True)
class Snapshot:
    """Default-rule analysis of every tracked symbol at one data version, and the
    response bodies rendered from it (by key, e.g. the expected session)."""

    fingerprint: dict[str, int]
    analysis: Analysis
    provenance: dict[str, repository.Provenance]
    bodies: dict[Hashable, bytes] = field(default_factory=dict, compare=False)
    # Breadth series by (rule, chosen rows' bytes), at most BREADTH_KEPT (breadth_series).
    breadths: dict[tuple[Rule, bytes], breadth_arrays.Series] = field(
        default_factory=dict, compare=False
    )
    # The fingerprint the reader that asked for this snapshot saw: the snapshot is read
    # in a transaction of its own, at that state or a newer one (a write in between).
    asked: dict[str, int] | None = field(default=None, compare=False)

    def serves(self, fingerprint: dict[str, int]) -> bool:
        """Whether a reader that sees ``fingerprint`` may be served this snapshot: it is
        of that state of the store, or of a newer one read for a reader of that state
        (so the reader's later calls do not read it again)."""
        return fingerprint == self.fingerprint or fingerprint == self.asked

    def row(self, symbol: str) -> int:
        try:
            return self.rows[symbol]
        except KeyError:
            raise NotFound(f"unknown symbol {symbol!r}: it is not tracked") from None

    # Derived once per data version, on first use (scan, screen, breadth).

    @cached_property
    def rows(self) -> dict[str, int]:
        return {symbol: row for row, symbol in enumerate(self.analysis.panel.symbols)}

    @cached_property
    def latest(self) -> scan_arrays.LatestEvents:
        return scan_arrays.latest_events(self.analysis)

    @cached_property
    def calendar(self) -> breadth_arrays.Calendar:
        return breadth_arrays.calendar(self.analysis.panel)

    @cached_property
    def highs_and_lows(self) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
        return breadth_arrays.highs_and_lows(self.analysis.panel.closes)

    def prepare_breadth(self) -> None:
        """Build breadth's arrays of this snapshot now (the serving process does so while
        it warms, so the first ``/v1/breadth`` does not), and every symbol's breadth
        under the default rule."""
        rows = np.arange(len(self.analysis.panel.symbols), dtype=np.int64)
        breadth_of(self, DEFAULT_RULE, rows)


class SignalBook:
    """Default-rule signals computed once per data change and served from memory.

    :meth:`snapshot` compares the symbols' data versions (one small query) with the
    cached snapshot's, so a poll in another process is seen at the next request. The
    hot read routes go further: :meth:`cached_body` hands out the serialized response
    without touching the store while the fingerprint was verified less than
    ``recheck_seconds`` ago. Any write committed through an engine the book has read
    from (this process) forces the next read to verify again, and a poll in this
    process drops the snapshot (:meth:`invalidate`).
    """

    def __init__(
        self,
        *,
        recheck_seconds: float = RECHECK_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self._recheck_seconds = recheck_seconds
        self._monotonic = monotonic
        self._verified_at = -math.inf
        self._verifying_since: float | None = None
        self._watched: set[int] = set()
        self._expected: tuple[date, datetime, datetime] | None = None

    def invalidate(self) -> None:
        self._snapshot = None
        self._verified_at = -math.inf

    def recheck(self) -> None:
        """Make the next read verify the fingerprint (data may have changed)."""
        self._verified_at = -math.inf

    def snapshot(self, session: Session) -> Snapshot:
        self._watch(session.get_bind())
        checked_at = self._monotonic()
        fingerprint = repository.data_versions(session)
        current = self._snapshot
        if current is not None and current.serves(fingerprint):
            self._verified_at = checked_at
            self._verifying_since = None
            return current
        with self._lock:
            current = self._snapshot
            if current is not None and current.serves(fingerprint):
                return current
            # Read in a transaction of its own (through Arrow), so keyed by the data
            # versions read with the closes: a write since ``fingerprint`` may be in it.
            stored = repository.read_snapshot(session)
            fresh = Snapshot(
                fingerprint=stored.fingerprint,
                analysis=analyse(stored.panel),
                provenance=stored.provenance,
                asked=fingerprint,
            )
            self._snapshot = fresh
            self._verified_at = checked_at
            self._verifying_since = None
            return fresh

    def cached_body(self, key: Hashable, *, verify: bool = True) -> bytes | None:
        """The body rendered under ``key`` if the data was verified recently enough.

        When the verification has aged out, one caller gets None (it verifies, through
        :meth:`snapshot`) while the others keep the verified body until it is done, for
        at most another ``recheck_seconds``: otherwise every request arriving during the
        check would query the store too. After a write in this process (:meth:`recheck`,
        :meth:`invalidate`) nobody is served the old body. With ``verify=False`` the
        caller only takes a body that needs no verification from it (None otherwise).
        """
        current = self._snapshot
        if current is None or self._verified_at == -math.inf:
            return None
        now = self._monotonic()
        if now - self._verified_at > self._recheck_seconds:
            verifying = self._verifying_since
            if verifying is None or now - verifying > self._recheck_seconds:
                if verify:
                    self._verifying_since = now
                return None
        return current.bodies.get(key)

    def expected_session(self, now: datetime) -> date:
        """The newest closed session at ``now`` (cached until the next session closes)."""
        cached = self._expected
        if cached is not None and cached[1] <= now < cached[2]:
            return cached[0]
        expected = calendar.last_closed_session(now)
        self._expected = (
            expected,
            calendar.session_close(expected),
            calendar.session_close(calendar.next_session(expected)),
        )
        return expected

    def _watch(self, bind: Engine | Connection) -> None:
        """Recheck after every write committed through ``bind``'s engine."""
        engine = bind.engine
        if id(engine) in self._watched:
            return
        self._watched.add(id(engine))

        def executed(
            conn: Connection, _cursor: Any, _stmt: Any, _params: Any, context: Any, _many: bool
        ) -> None:
            if context.isinsert or context.isupdate or context.isdelete:
                conn.info["crosswatch_wrote"] = True

        def committed(conn: Connection) -> None:
            if conn.info.pop("crosswatch_wrote", False):
                self.recheck()

        event.listen(engine, "after_cursor_execute", executed)
        event.listen(engine, "commit", committed)


def chosen_rows(
    snap: Snapshot, session: Session, symbols: Sequence[str] | None, universe: str | None
) -> npt.NDArray[np.int64]:
    """Panel rows of ``symbols`` (in that order; 404 for one not tracked), or of every
    symbol, limited to the members of ``universe`` (404 for an unknown universe)."""
    if symbols:
        rows = np.array([snap.row(symbol) for symbol in symbols], dtype=np.int64)
    else:
        rows = np.arange(len(snap.analysis.panel.symbols), dtype=np.int64)
    if universe is None:
        return rows
    members = [snap.rows[m] for m in universes.members(session, universe) if m in snap.rows]
    inside = np.zeros(len(snap.analysis.panel.symbols), dtype=bool)
    inside[members] = True
    chosen: npt.NDArray[np.int64] = rows[inside[rows]]
    return chosen


def breadth_of(snap: Snapshot, rule: Rule, rows: npt.NDArray[np.int64]) -> breadth_arrays.Series:
    key = (rule, rows.tobytes())
    found = snap.breadths.get(key)
    if found is not None:
        return found
    analysis = snap.analysis
    closes = analysis.panel.closes
    if rule == DEFAULT_RULE:
        signals = analysis.signals
    else:
        signals = kernel.detect(closes[rows], rule.fast, rule.slow, rule.kind)
    cells = breadth_arrays.Cells.of(
        closes, snap.highs_and_lows, signals, rule_picked=rule != DEFAULT_RULE
    )
    found = breadth_arrays.breadth(analysis.panel, snap.calendar, rows, cells)
    for array in vars(found).values():
        array.flags.writeable = False  # shared by every request until the data changes
    kept = list(snap.breadths)  # a copy: other requests may add meanwhile
    for oldest in kept[: max(len(kept) - BREADTH_KEPT + 1, 0)]:
        snap.breadths.pop(oldest, None)
    snap.breadths[key] = found
    return found

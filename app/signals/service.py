"""Signal use-cases over the store: the in-memory book of default-rule signals, custom
rules on demand, crosses, turns, compare, and scan, screen and breadth (whole arrays of
the cached analysis; see :mod:`app.signals.scan`, :mod:`.screen`, :mod:`.breadth`)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Engine, event
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.market import calendar, repository, universes
from app.signals import breadth as breadth_arrays
from app.signals import kernel
from app.signals import scan as scan_arrays
from app.signals import screen as screen_arrays
from app.signals.analysis import (
    DEFAULT_RULE,
    DEFAULT_TURNS,
    Analysis,
    Rule,
    TurnRule,
    analyse,
    cross_summary,
    crosses_of,
    signal_of,
    signals_of,
    turns_of,
)

# How long a verified data fingerprint is trusted by the cached ``/v1/signals`` bodies:
# a write by another process is served within this many seconds (writes in this
# process are seen at once).
RECHECK_SECONDS = 0.5


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
        _breadth_of(self, DEFAULT_RULE, rows)


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


def normalise(symbol: str) -> str:
    return symbol.strip().upper()


def _signal(
    analysis: Analysis,
    row: int,
    provenance: repository.Provenance | None,
    expected: date,
) -> dict[str, Any] | None:
    return _with_provenance(analysis, row, signal_of(analysis, row), provenance, expected)


def _with_provenance(
    analysis: Analysis,
    row: int,
    fields: dict[str, Any] | None,
    provenance: repository.Provenance | None,
    expected: date,
) -> dict[str, Any] | None:
    if fields is None:
        return None
    return {
        "symbol": analysis.panel.symbols[row],
        **fields,
        "source": provenance.source if provenance else None,
        "instrument": provenance.instrument if provenance else None,
        "expected_session": expected,
        "stale": fields["session"] < expected,
    }


def all_signals(
    book: SignalBook, session: Session, now: datetime, universe: str | None = None
) -> list[dict[str, Any]]:
    """The default-rule signal of every tracked symbol with bars (of ``universe``'s
    members), derived on whole arrays (:func:`app.signals.analysis.signals_of`)."""
    snap = book.snapshot(session)
    expected = book.expected_session(now)
    analysis = snap.analysis
    rows = chosen_rows(snap, session, None, universe)
    result = []
    for row, fields in zip(rows.tolist(), signals_of(analysis, rows), strict=True):
        symbol = analysis.panel.symbols[row]
        signal = _with_provenance(analysis, row, fields, snap.provenance.get(symbol), expected)
        if signal is not None:
            result.append(signal)
    return result


def check_rule(rule: Rule, history: int) -> None:
    if rule.fast < 2 or rule.slow < 2:
        raise InvalidInput("fast and slow must each be at least 2 sessions")
    if rule.fast >= rule.slow:
        raise InvalidInput(f"fast ({rule.fast}) must be shorter than slow ({rule.slow})")
    if rule.slow > history:
        raise InvalidInput(
            f"slow ({rule.slow}) is longer than the stored history ({history} sessions)"
        )


def _single(
    book: SignalBook, session: Session, symbol: str, rule: Rule, turns: TurnRule
) -> tuple[Analysis, int, repository.Provenance | None]:
    snap = book.snapshot(session)
    row = snap.row(symbol)
    history = int(snap.analysis.lengths[row])
    if history == 0:
        raise NotFound(f"symbol {symbol!r} has no stored closes yet")
    check_rule(rule, history)
    provenance = snap.provenance.get(symbol)
    if rule == DEFAULT_RULE and turns == DEFAULT_TURNS:
        return snap.analysis, row, provenance
    panel = repository.load_panel(session, [symbol])
    return analyse(panel, rule, turns), 0, provenance


def one_signal(
    book: SignalBook, session: Session, symbol: str, rule: Rule, now: datetime
) -> dict[str, Any]:
    analysis, row, provenance = _single(book, session, symbol, rule, DEFAULT_TURNS)
    signal = _signal(analysis, row, provenance, book.expected_session(now))
    assert signal is not None
    return signal


def crosses(
    book: SignalBook, session: Session, symbol: str, rule: Rule, since: date | None
) -> dict[str, Any]:
    analysis, row, _ = _single(book, session, symbol, rule, DEFAULT_TURNS)
    found = crosses_of(analysis, row, since)
    return {
        "symbol": symbol,
        "rule": rule.as_dict(),
        "crosses": found,
        "summary": cross_summary(found),
    }


def turns(book: SignalBook, session: Session, symbol: str, turn_rule: TurnRule) -> dict[str, Any]:
    analysis, row, _ = _single(book, session, symbol, DEFAULT_RULE, turn_rule)
    return {
        "symbol": symbol,
        "rule": {"decline_pct": turn_rule.decline * 100, "rebound_pct": turn_rule.rebound * 100},
        "turns": turns_of(analysis, row),
    }


def compare(
    book: SignalBook,
    session: Session,
    symbols: Sequence[str],
    start: str,
    end: date | None,
    now: datetime,
    universe: str | None = None,
) -> dict[str, Any]:
    """Return of each symbol from the close before ``start`` to the last close by ``end``.

    ``start="ytd"`` measures from the last close of the previous year. With
    ``universe``, only its members count, and those without closes over the period are
    left out (a new member waits for its backfill) instead of refusing the request.
    """
    snap = book.snapshot(session)
    skip_missing = universe is not None
    if universe is not None:
        rows = chosen_rows(snap, session, symbols, universe).tolist()
        symbols = [snap.analysis.panel.symbols[row] for row in rows]
    if start == "ytd":
        reference_end = end or calendar.last_closed_session(now)
        base_before = date(reference_end.year, 1, 1)
    else:
        try:
            base_before = date.fromisoformat(start)
        except ValueError:
            raise InvalidInput(f"start {start!r} is neither 'ytd' nor a YYYY-MM-DD date") from None
    if end is not None and end < base_before:
        raise InvalidInput(f"end {end} is before start {base_before}")
    results = []
    for symbol in symbols:
        row = snap.row(symbol)
        sessions = snap.analysis.panel.sessions[row]
        closes = snap.analysis.panel.closes[row]
        valid = ~np.isnat(sessions)
        days = sessions[valid]
        values = closes[valid]
        base_index = int(np.searchsorted(days, np.datetime64(base_before), side="left")) - 1
        end_index = (
            len(days) - 1
            if end is None
            else int(np.searchsorted(days, np.datetime64(end), side="right")) - 1
        )
        if base_index < 0 or end_index <= base_index:
            if skip_missing:
                continue
            raise InvalidInput(f"{symbol} has no closes to compare over that period")
        results.append(
            {
                "symbol": symbol,
                "start_session": days[base_index].astype(object),
                "start_close": float(values[base_index]),
                "end_session": days[end_index].astype(object),
                "end_close": float(values[end_index]),
                "return_pct": (float(values[end_index]) / float(values[base_index]) - 1) * 100,
            }
        )
    return {"start": start, "end": end, "returns": results}


SCAN_EVENTS = ("golden_cross", "death_cross", "peak", "trough", "cross_approaching")


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


def scan(
    book: SignalBook,
    session: Session,
    event: str,
    within: int,
    symbols: Sequence[str] | None,
    universe: str | None = None,
) -> dict[str, Any]:
    """Symbols with ``event`` in their last ``within`` sessions, newest first."""
    snap = book.snapshot(session)
    rows = chosen_rows(snap, session, symbols, universe)
    matches = scan_arrays.records(snap.analysis, snap.latest, event, rows, within)
    matches.sort(key=lambda m: (m["session"], m["symbol"]), reverse=True)
    return {"event": event, "within": within, "matches": matches}


@dataclass(frozen=True)
class ScreenQuery:
    """A screen's filters, event window, order and page size."""

    filters: screen_arrays.Filters = field(default_factory=screen_arrays.Filters)
    event: str | None = None
    within: int = 5
    sort: str | None = None
    limit: int = 50


def _with_volumes(
    session: Session, snap: Snapshot, found: screen_arrays.Figures
) -> screen_arrays.Figures:
    """``found`` with relative volume, from one read of the newest volumes."""
    analysis = snap.analysis
    if found.rows.size == 0:
        return found
    width = analysis.panel.closes.shape[1]
    oldest = np.maximum(
        width - analysis.lengths[found.rows], width - screen_arrays.VOLUME_SESSIONS - 1
    )
    since = analysis.panel.sessions[found.rows, oldest].min().astype(object)
    symbols = [analysis.panel.symbols[row] for row in found.rows.tolist()]
    stored = repository.load_volumes(session, symbols, since=since)
    position = {symbol: i for i, symbol in enumerate(symbols)}
    positions = np.repeat(
        np.array([position[s] for s in stored.symbols], dtype=np.int64), stored.counts
    )
    volumes = screen_arrays.align_volumes(
        analysis, found.rows, positions, stored.sessions, stored.volumes
    )
    relative = screen_arrays.relative_volume(volumes)
    return screen_arrays.Figures(
        **{
            **{n: getattr(found, n) for n in found.__dataclass_fields__},
            "relative_volume": relative,
        }
    )


def screen(
    book: SignalBook,
    session: Session,
    query: ScreenQuery,
    symbols: Sequence[str] | None = None,
    universe: str | None = None,
) -> dict[str, Any]:
    """The newest session's figures of every chosen symbol that passes the filters."""
    snap = book.snapshot(session)
    analysis = snap.analysis
    rows = chosen_rows(snap, session, symbols, universe)
    found = screen_arrays.figures(analysis, rows, query.filters.return_sessions)
    width = analysis.panel.closes.shape[1]
    newest = (
        analysis.panel.sessions[found.rows, width - 1].max().astype(object)
        if found.rows.size
        else None
    )
    # Relative volume needs a read of the volumes: filtered after the rest.
    keep = screen_arrays.select(found, replace(query.filters, min_relative_volume=None))
    if query.event is not None:
        columns = snap.latest.column[query.event][found.rows]
        keep &= (columns >= 0) & (width - 1 - columns < query.within)
    found = found.take(keep)
    by_volume = query.sort is not None and query.sort.lstrip("-") == "relative_volume"
    if query.filters.min_relative_volume is not None or by_volume:
        found = _with_volumes(session, snap, found)
        found = found.take(screen_arrays.select(found, query.filters))
    count = int(found.rows.size)
    found = found.take(screen_arrays.order(found, query.sort)[: query.limit])
    if not (query.filters.min_relative_volume is not None or by_volume):
        found = _with_volumes(session, snap, found)
    last_column, last_kind = snap.latest.newest()
    kinds = [scan_arrays.EVENT_TYPES[k] if k >= 0 else None for k in last_kind[found.rows].tolist()]
    rows_out = screen_arrays.to_records(analysis, found, last_column[found.rows], kinds)
    return {"session": newest, "count": count, "rows": rows_out}


# Breadth series a snapshot keeps (each ~200 KB at 2,520 sessions): the universes and
# rules asked for since the data last changed.
BREADTH_KEPT = 32


def breadth_series(
    book: SignalBook, session: Session, rule: Rule, universe: str | None
) -> breadth_arrays.Series:
    """Breadth per session of a universe (default: every tracked symbol) under ``rule``:
    computed once per data version and set of members."""
    snap = book.snapshot(session)
    return _breadth_of(snap, rule, chosen_rows(snap, session, None, universe))


def _breadth_of(snap: Snapshot, rule: Rule, rows: npt.NDArray[np.int64]) -> breadth_arrays.Series:
    key = (rule, rows.tobytes())
    found = snap.breadths.get(key)
    if found is not None:
        return found
    analysis = snap.analysis
    closes = analysis.panel.closes
    highs, lows = snap.highs_and_lows
    if rule == DEFAULT_RULE:
        signals = analysis.signals
    else:
        signals = kernel.detect(closes[rows], rule.fast, rule.slow, rule.kind)
    cells = breadth_arrays.Cells(
        closes,
        highs,
        lows,
        signals.fast_ma,
        signals.slow_ma,
        signals.regime,
        signals.cross,
        rule_picked=rule != DEFAULT_RULE,
    )
    found = breadth_arrays.breadth(analysis.panel, snap.calendar, rows, cells)
    for array in vars(found).values():
        array.flags.writeable = False  # shared by every request until the data changes
    kept = list(snap.breadths)  # a copy: other requests may add meanwhile
    for oldest in kept[: max(len(kept) - BREADTH_KEPT + 1, 0)]:
        snap.breadths.pop(oldest, None)
    snap.breadths[key] = found
    return found


def newest_breadth(
    book: SignalBook, session: Session, universe: str | None, rule: Rule = DEFAULT_RULE
) -> dict[str, Any] | None:
    """The newest session's row of ``/v1/breadth`` for ``universe`` (None: no member
    has a close)."""
    return breadth_arrays.newest(breadth_series(book, session, rule, universe))


def breadth(
    book: SignalBook,
    session: Session,
    rule: Rule,
    universe: str | None,
    start: date | None,
    end: date | None,
) -> dict[str, Any]:
    """Breadth per session of a universe (default: every tracked symbol) under ``rule``,
    from ``start`` to ``end`` (inclusive)."""
    if start is not None and end is not None and end < start:
        raise InvalidInput(f"end {end} is before start {start}")
    series = breadth_series(book, session, rule, universe)
    days = series.sessions
    inside = np.ones(days.size, dtype=bool)
    if start is not None:
        inside &= days >= np.datetime64(start)
    if end is not None:
        inside &= days <= np.datetime64(end)

    def ints(values: npt.NDArray[np.int64]) -> list[int]:
        return [int(v) for v in values[inside].tolist()]

    def shares(values: npt.NDArray[np.float64]) -> list[float | None]:
        return [None if v != v else v for v in values[inside].tolist()]

    columns = {
        "session": days[inside].astype(object).tolist(),
        "members": ints(series.members),
        "above_fast_pct": shares(series.above_fast_pct),
        "above_slow_pct": shares(series.above_slow_pct),
        "golden_regime_pct": shares(series.golden_regime_pct),
        "golden_crosses": ints(series.golden_crosses),
        "death_crosses": ints(series.death_crosses),
        "new_highs": ints(series.new_highs),
        "new_lows": ints(series.new_lows),
    }
    names = list(columns)
    return {
        "universe": universes.canonical_name(universe) if universe is not None else None,
        "rule": rule.as_dict(),
        "rows": [
            dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)
        ],
    }

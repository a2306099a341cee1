"""The daily brief a person reads: each tracked index, then each universe's breadth and
its top screen rows, as of one session, as a typed body.

Every figure is one the API already serves, taken from the same service functions on
the same analysis: ``/v1/signals/{symbol}`` (regime, gap, trigger close, flat sessions
to a cross, drawdown, peak, last trough and its forward returns), ``/v1/compare``
(year-to-date return), ``/v1/screen`` (change on the day, trigger distance, 21-session
return, the top rows) and ``/v1/breadth``. A brief of a past session runs them on the
signal book cut at that session (:func:`app.signals.brief_cut.book_as_of`): data up to
and including it. Its Markdown is :mod:`app.signals.brief_markdown`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.market import universes
from app.settings import DEFAULT_SYMBOLS
from app.signals import screen as screen_arrays
from app.signals import screening, service
from app.signals.analysis import DEFAULT_RULE
from app.signals.book import SignalBook, Snapshot, chosen_rows
from app.signals.brief_cut import book_as_of
from app.signals.schemas import (
    BreadthRow,
    CrossRef,
    PeakRef,
    Regime,
    RuleOut,
    ScreenRow,
    Turn,
)

#: Sessions of the movers' return (the screen's default ``return_sessions``).
RETURN_SESSIONS = 21
#: Rows of each top list by default.
TOP_ROWS = 5


class BriefIndex(BaseModel):
    """One tracked index on the brief's session (its own newest session by then)."""

    symbol: str
    session: date
    stale: bool = Field(description="Its newest close is older than the brief's session")
    close: float
    change_pct: float | None = Field(description="Change from the previous close, %")
    ytd_return_pct: float | None = Field(
        description="From the last close of the previous year (as `/v1/compare?start=ytd`)"
    )
    regime: Regime | None
    gap_pct: float | None
    fast_value: float | None
    slow_value: float | None
    last_cross: CrossRef | None
    sessions_since_cross: int | None
    trigger_close: float | None = Field(
        description="Next-session close that would make the averages equal"
    )
    trigger_distance_pct: float | None = Field(description="|trigger_close / close - 1| in %")
    flat_sessions_to_cross: int | None = Field(
        description="Sessions to a cross if every future close equalled this one"
    )
    drawdown_pct: float | None
    peak: PeakRef
    last_trough: Turn | None


class BriefUniverse(BaseModel):
    """A universe's breadth on the brief's session and its top screen rows."""

    universe: str | None = Field(description="null: every tracked symbol")
    breadth: BreadthRow | None = Field(description="null: no member has a close that session")
    closest_to_golden_cross: list[ScreenRow] = Field(
        description="Death-regime members by trigger distance, nearest first"
    )
    top_gainers: list[ScreenRow] = Field(description="Highest 21-session return first")
    top_decliners: list[ScreenRow] = Field(description="Lowest 21-session return first")


class Brief(BaseModel):
    """The daily brief (``GET /v1/brief``); Markdown with ``Accept: text/markdown``."""

    session: date
    rule: RuleOut
    return_sessions: int
    indices: list[BriefIndex]
    universes: list[BriefUniverse]


def is_index(symbol: str) -> bool:
    """Whether a tracked symbol is an index: Yahoo's ``^`` names (``^RUT``, ``^GSPC``)."""
    return symbol.startswith("^")


def _index_order(symbol: str) -> tuple[int, str]:
    """The default indices first, as configured (^RUT leads), then the others by name."""
    if symbol in DEFAULT_SYMBOLS:
        return DEFAULT_SYMBOLS.index(symbol), ""
    return len(DEFAULT_SYMBOLS), symbol


def newest_session(book: SignalBook, session: Session) -> date:
    """The newest session any tracked symbol has a close for (404 without closes)."""
    sessions = book.snapshot(session).calendar.sessions
    if not sessions.size:
        raise NotFound("no closes are stored yet: there is no session to brief")
    newest: date = sessions[-1].astype(object)
    return newest


def check_session(book: SignalBook, session: Session, day: date) -> None:
    """404 unless some tracked symbol has a close on ``day``."""
    sessions = book.snapshot(session).calendar.sessions
    at = int(np.searchsorted(sessions, np.datetime64(day)))
    if at >= sessions.size or sessions[at] != np.datetime64(day):
        raise NotFound(f"no stored closes on {day}: it is not a session of the store")


def build(
    book: SignalBook,
    session: Session,
    day: date,
    now: datetime,
    *,
    universe: str | None = None,
    with_universes: bool = True,
    top: int = TOP_ROWS,
) -> Brief:
    """The brief as of ``day`` over ``book``'s data (cut at ``day``).

    ``universe``: only that universe's section (404 if unknown); otherwise one per
    stored universe, or one over every tracked symbol when there is none.
    ``with_universes=False`` leaves the universe sections out (the poll's brief).
    """
    snap = book.snapshot(session)
    symbols = sorted(filter(is_index, snap.analysis.panel.symbols), key=_index_order)
    dated = book_as_of(book, session, day, symbols)
    indices = [
        _index(dated, session, symbol, day, now)
        for symbol in symbols
        if _has_bars(dated, session, symbol)
    ]
    sections: list[BriefUniverse] = []
    if with_universes:
        if universe is not None:
            names: Sequence[str | None] = [universes.existing(session, universe)]
        else:
            names = [u.name for u in universes.list_all(session)] or [None]
        sections = [_universe(book, session, name, day, top) for name in names]
    return Brief(
        session=day,
        rule=RuleOut.model_validate(DEFAULT_RULE.as_dict()),
        return_sessions=RETURN_SESSIONS,
        indices=indices,
        universes=sections,
    )


def _has_bars(book: SignalBook, session: Session, symbol: str) -> bool:
    snap = book.snapshot(session)
    return bool(snap.analysis.lengths[snap.row(symbol)] > 0)


def _index(book: SignalBook, session: Session, symbol: str, day: date, now: datetime) -> BriefIndex:
    signal = service.one_signal(book, session, symbol, DEFAULT_RULE, now)
    (row,) = screening.screen(
        book,
        session,
        screening.ScreenQuery(
            filters=screen_arrays.Filters(return_sessions=RETURN_SESSIONS), limit=1
        ),
        [symbol],
    )["rows"]
    try:
        (ytd,) = service.compare(book, session, [symbol], "ytd", day, now)["returns"]
        ytd_return: float | None = ytd["return_pct"]
    except InvalidInput:  # no close before this year
        ytd_return = None
    fields: dict[str, Any] = {
        name: signal[name] for name in BriefIndex.model_fields if name in signal
    }
    return BriefIndex.model_validate(
        {
            **fields,
            "stale": signal["session"] < day,
            "change_pct": row["change_pct"],
            "ytd_return_pct": ytd_return,
            "trigger_distance_pct": row["trigger_distance_pct"],
        }
    )


#: A member whose history by then is this many times the median's is cut apart.
LONG_HISTORY = 4


def _universe(
    book: SignalBook, session: Session, name: str | None, day: date, top: int
) -> BriefUniverse:
    """``name``'s section: breadth is causal, so the whole book's row of ``day`` is the
    one served then; the screen runs on the members cut at ``day``."""
    rows = service.breadth(book, session, DEFAULT_RULE, name, day, day)["rows"]
    snap = book.snapshot(session)
    chosen = chosen_rows(snap, session, None, name)
    sessions = snap.calendar.sessions
    if sessions.size and np.datetime64(day) >= sessions[-1]:
        books = [book]
    else:
        books = [book_as_of(book, session, day, group) for group in _groups(snap, chosen, day)]

    def screened(filters: screen_arrays.Filters, sort: str) -> list[ScreenRow]:
        query = screening.ScreenQuery(filters=filters, sort=sort, limit=top)
        found = [
            row for b in books for row in screening.screen(b, session, query, None, name)["rows"]
        ]
        if len(books) > 1:  # each group's top rows, merged in the screen's order
            found = sorted(found, key=lambda row: _screen_order(row, sort))[:top]
        return [ScreenRow.model_validate(row) for row in found]

    returns = screen_arrays.Filters(return_sessions=RETURN_SESSIONS)
    return BriefUniverse(
        universe=name,
        breadth=BreadthRow.model_validate(rows[0]) if rows else None,
        closest_to_golden_cross=screened(
            screen_arrays.Filters(regime="death", return_sessions=RETURN_SESSIONS),
            "trigger_distance_pct",
        ),
        top_gainers=screened(returns, "-return_pct"),
        top_decliners=screened(returns, "return_pct"),
    )


def _groups(snap: Snapshot, rows: npt.NDArray[np.int64], day: date) -> list[list[str]]:
    """``rows``' symbols, those with a history by ``day`` over :data:`LONG_HISTORY`
    times the median's apart: a cut is as wide as its longest row, so a few indices of
    a century would otherwise widen thousands of short rows."""
    symbols = snap.analysis.panel.symbols
    if not rows.size:
        return [[]]
    kept = _kept(snap, rows, day)
    long = kept > LONG_HISTORY * max(float(np.median(kept)), 1.0)
    groups = [[symbols[r] for r in rows[~long].tolist()], [symbols[r] for r in rows[long].tolist()]]
    return [group for group in groups if group]


def _kept(snap: Snapshot, rows: npt.NDArray[np.int64], day: date) -> npt.NDArray[np.int64]:
    """Closes of each of ``rows`` up to ``day``, from the calendar (a row whose sessions
    have a gap is counted on its own cells)."""
    cal = snap.calendar
    through = int(np.searchsorted(cal.sessions, np.datetime64(day), side="right")) - 1
    lengths = cal.lengths[rows]
    first = cal.last[rows] - lengths + 1
    kept: npt.NDArray[np.int64] = np.clip(through - first + 1, 0, lengths)
    gapped = np.flatnonzero(~cal.contiguous[rows] & (lengths > 0))
    if gapped.size:
        cells = snap.analysis.panel.sessions[rows[gapped]]
        kept[gapped] = np.count_nonzero(cells <= np.datetime64(day), axis=1)
    return kept


def _screen_order(row: dict[str, Any], sort: str) -> tuple[bool, float, str]:
    """The screen's order (:func:`app.signals.screen.order`): by ``sort`` (``-name``
    descending), nulls last, ties by symbol."""
    value = row[sort.lstrip("-")]
    if value is None:
        return True, 0.0, row["symbol"]
    return False, -value if sort.startswith("-") else value, row["symbol"]

"""The daily brief a person reads: each tracked index, then each universe's breadth and
its top screen rows, as of one session, as a typed body and as Markdown.

Every figure is one the API already serves, taken from the same service functions on
the same analysis: ``/v1/signals/{symbol}`` (regime, gap, trigger close, flat sessions
to a cross, drawdown, peak, last trough and its forward returns), ``/v1/compare``
(year-to-date return), ``/v1/screen`` (change on the day, trigger distance, 21-session
return, the top rows) and ``/v1/breadth``. A brief of a past session runs them on the
signal book cut at that session (:func:`book_as_of`): data up to and including it.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.market import repository as market
from app.market import universes
from app.market.repository import ClosePanel
from app.settings import DEFAULT_SYMBOLS
from app.signals import screen as screen_arrays
from app.signals import screening, service
from app.signals.analysis import DEFAULT_RULE, analyse
from app.signals.book import SignalBook, Snapshot, chosen_rows
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


class _CutBook(SignalBook):
    """A signal book that always serves one snapshot: the data cut at a session."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self._fixed = snapshot

    def snapshot(self, session: Session) -> Snapshot:
        return self._fixed


def cut_panel(panel: ClosePanel, day: date) -> ClosePanel:
    """``panel`` with every close after ``day`` dropped (rows stay right-aligned).

    The columns around where most rows' kept closes end are sliced (a view); only the
    rows whose kept closes end elsewhere, or that keep none, are moved, in a copy.
    """
    sessions = panel.sessions
    width = sessions.shape[1]
    lengths = np.count_nonzero(~np.isnat(sessions), axis=1)
    kept = lengths - np.count_nonzero(sessions > np.datetime64(day), axis=1)
    if not kept.size or kept.max() == 0:
        empty = np.empty((len(panel.symbols), 0))
        return ClosePanel(panel.symbols, empty, empty.astype("datetime64[D]"))
    ends = width - lengths + kept  # each row's column after its last kept close
    new_width = int(kept.max())
    values, counts = np.unique(ends[kept > 0], return_counts=True)
    end = int(values[np.argmax(counts)])  # where most rows' kept closes end
    if end >= new_width:
        closes = panel.closes[:, end - new_width : end]
        days = sessions[:, end - new_width : end]
        moved = np.flatnonzero((ends != end) & (lengths > 0))
    else:
        closes = np.full((len(panel.symbols), new_width), np.nan)
        days = np.full(closes.shape, np.datetime64("NaT", "D"))
        moved = np.flatnonzero(lengths > 0)
    if moved.size:
        closes, days = closes.copy(), days.copy()
        column = np.arange(new_width)[None, :]
        inside = column >= (new_width - kept[moved])[:, None]
        at = np.clip(column + (ends[moved] - new_width)[:, None], 0, max(width - 1, 0))
        rows = moved[:, None]
        closes[moved] = np.where(inside, panel.closes[rows, at], np.nan)
        days[moved] = np.where(inside, sessions[rows, at], np.datetime64("NaT", "D"))
    return ClosePanel(panel.symbols, closes, days)


# Per book: the data version and session of the cuts kept, and the cuts by their rows.
_cuts: WeakKeyDictionary[
    SignalBook, tuple[dict[str, int], date, dict[tuple[str, ...], SignalBook]]
] = WeakKeyDictionary()
_cuts_lock = threading.Lock()


def book_as_of(book: SignalBook, session: Session, day: date, symbols: Sequence[str]) -> SignalBook:
    """``book`` as it was after the close of ``day``, for ``symbols``: itself when
    ``day`` is its newest session, else a book over the rows of ``symbols`` cut at
    ``day``, as wide as their own histories. Each cut is one analysis of those rows
    (seconds for thousands of symbols), built one at a time and kept while the data
    version and the session asked stay the same."""
    snap = book.snapshot(session)
    sessions = snap.calendar.sessions
    if sessions.size and np.datetime64(day) >= sessions[-1]:
        return book
    key = tuple(sorted(symbols))  # rows in symbol order, as the panel's (screen ties)
    with _cuts_lock:
        kept = _cuts.get(book)
        if kept is None or kept[0] != snap.fingerprint or kept[1] != day:
            kept = (snap.fingerprint, day, {})
            _cuts[book] = kept
        dated = kept[2].get(key)
        if dated is None:
            panel = snap.analysis.panel
            rows = np.array([snap.row(symbol) for symbol in key], dtype=np.int64)
            # Only the columns these rows use: the panel is as wide as its longest row.
            start = panel.closes.shape[1] - int(snap.analysis.lengths[rows].max(initial=0))
            chosen = ClosePanel(list(key), panel.closes[rows, start:], panel.sessions[rows, start:])
            dated = _CutBook(
                Snapshot(
                    fingerprint=snap.fingerprint,
                    analysis=analyse(cut_panel(chosen, day)),
                    provenance=snap.provenance,
                )
            )
            kept[2][key] = dated
        return dated


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


def indices_markdown(session: Session, day: date, now: datetime) -> str:
    """The brief of ``day`` without its universe sections, as Markdown: what the poll's
    ``daily_brief`` event carries as ``text``. It reads the closes of the tracked
    indices only (a few symbols), whatever the number of other symbols."""
    symbols = [symbol for symbol in market.tracked_symbols(session) if is_index(symbol)]
    analysis = analyse(market.load_panel(session, symbols))
    book = _CutBook(Snapshot(fingerprint={}, analysis=analysis, provenance={}))
    return markdown(build(book, session, day, now, with_universes=False))


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


# Markdown -------------------------------------------------------------------------


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:+,.{digits}f}%"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table; columns after the first are right-aligned."""
    aligns = ["---"] + ["--:"] * (len(header) - 1)
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(aligns) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def markdown(brief: Brief) -> str:
    """The brief for a person: a table of the indices, a paragraph on each, and each
    universe's breadth and top rows."""
    rule = brief.rule
    lines = [
        f"# Crosswatch brief, {brief.session}",
        "",
        f"As of the close of {brief.session}; rule {rule.type.upper()} {rule.fast}/{rule.slow}.",
    ]
    if brief.indices:
        lines += ["", "## Indices", ""]
        lines += _table(
            ["Index", "Close", "Day", "YTD", "Regime", "Gap", "Trigger", "Flat→cross", "Drawdown"],
            [
                [
                    i.symbol + (f" ({i.session})" if i.stale else ""),
                    _num(i.close),
                    _pct(i.change_pct),
                    _pct(i.ytd_return_pct),
                    i.regime.value if i.regime else "–",
                    _pct(i.gap_pct),
                    _num(i.trigger_close),
                    "–" if i.flat_sessions_to_cross is None else str(i.flat_sessions_to_cross),
                    _pct(i.drawdown_pct, 1),
                ]
                for i in brief.indices
            ],
        )
        for index in brief.indices:
            lines += ["", f"### {index.symbol}", "", *_index_lines(index, brief.indices)]
    else:
        lines += ["", "No index is tracked."]
    for section in brief.universes:
        lines += ["", *_universe_lines(section, brief.return_sessions)]
    return "\n".join(lines) + "\n"


def _index_lines(index: BriefIndex, others: Sequence[BriefIndex]) -> list[str]:
    beside = ", ".join(
        f"{o.symbol} {_pct(o.ytd_return_pct)}" for o in others if o.symbol != index.symbol
    )
    ytd = f"year to date {_pct(index.ytd_return_pct)}" + (f" ({beside})" if beside else "")
    lines = [f"- Close {_num(index.close)} ({_pct(index.change_pct)} on the day); {ytd}."]
    if index.regime is not None:
        since = ""
        if index.last_cross is not None:
            kind = index.last_cross.type.replace("_", " ")
            since = (
                f" since the {kind} of {index.last_cross.session} "
                f"({index.sessions_since_cross} sessions ago)"
            )
        lines.append(
            f"- {index.regime.value.capitalize()} regime{since}; "
            f"gap {_pct(index.gap_pct)} (fast {_num(index.fast_value)}, "
            f"slow {_num(index.slow_value)})."
        )
        lines.append(_watch_line(index))
    else:
        lines.append("- No regime yet: too little history for the slow average.")
    drawdown = index.drawdown_pct
    lines.append(
        f"- Drawdown {_pct(drawdown, 1)} from the peak of {_num(index.peak.close)} "
        f"({index.peak.session})."
        if drawdown
        else f"- At its peak ({_num(index.peak.close)}, {index.peak.session})."
    )
    trough = index.last_trough
    if trough is not None:
        after = ", ".join(
            f"{_pct(value, 1)} after {horizon}"
            for horizon, value in trough.forward_returns.model_dump(by_alias=True).items()
            if value is not None
        )
        lines.append(
            f"- Last trough {_num(trough.close)} on {trough.session} "
            f"({_pct(trough.change_pct, 1)} from the prior peak)"
            + (f"; then {after} sessions." if after else "; no forward return yet.")
        )
    return lines


def _watch_line(index: BriefIndex) -> str:
    cross = "golden" if index.regime == Regime.death else "death"
    flat = (
        f"at a flat {_num(index.close)} it comes in {index.flat_sessions_to_cross} sessions"
        if index.flat_sessions_to_cross is not None
        else "a flat close would not make it"
    )
    if index.trigger_close is None:
        return (
            f"- {cross.capitalize()}-cross watch: no close would make the cross next "
            f"session; {flat}."
        )
    side = "below" if index.trigger_close < index.close else "above"
    return (
        f"- {cross.capitalize()}-cross watch: a close at {_num(index.trigger_close)} "
        f"({_num(index.trigger_distance_pct)}% {side} this close) makes the cross next "
        f"session; {flat}."
    )


def _universe_lines(section: BriefUniverse, return_sessions: int) -> list[str]:
    title = f"Universe {section.universe}" if section.universe else "All tracked symbols"
    lines = [f"## {title}", ""]
    b = section.breadth
    if b is None:
        lines.append("No member has a close this session.")
    else:
        lines.append(
            f"Breadth of {b.members:,} members: {_num(b.above_fast_pct, 1)}% above the fast "
            f"average, {_num(b.above_slow_pct, 1)}% above the slow, "
            f"{_num(b.golden_regime_pct, 1)}% in a golden regime; "
            f"{b.golden_crosses} golden and {b.death_crosses} death crosses; "
            f"{b.new_highs} new 252-session highs, {b.new_lows} new lows."
        )
    if section.closest_to_golden_cross:
        lines += ["", "Closest to a golden cross:", ""]
        lines += _table(
            ["Symbol", "Close", "Trigger", "Distance", "Flat→cross", "Gap"],
            [
                [
                    r.symbol,
                    _num(r.close),
                    _num(r.trigger_close),
                    _num(r.trigger_distance_pct) + "%",
                    "–" if r.flat_sessions_to_cross is None else str(r.flat_sessions_to_cross),
                    _pct(r.gap_pct),
                ]
                for r in section.closest_to_golden_cross
            ],
        )
    for title, rows in (
        (f"Top {return_sessions}-session gainers", section.top_gainers),
        (f"Top {return_sessions}-session decliners", section.top_decliners),
    ):
        if rows:
            lines += ["", f"{title}:", ""]
            lines += _table(
                ["Symbol", "Close", "Return", "Day", "Regime"],
                [
                    [
                        r.symbol,
                        _num(r.close),
                        _pct(r.return_pct),
                        _pct(r.change_pct),
                        r.regime.value if r.regime else "–",
                    ]
                    for r in rows
                ],
            )
    return lines

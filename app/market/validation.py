"""Checks a provider's bars before any reach the store. Pure: no I/O, ``now`` injected.

Two kinds of failure, on purpose:

- **The whole response is refused** (``BadData``) when it shows the provider itself is
  broken: no bars at all, a date twice, or dates out of order. Keeping part of such a
  response would mean guessing which copy or order is right.
- **Single bars are quarantined** (``ValidationResult.rejected``, each with its date
  and a reason) when the rest of the response is still trustworthy: a NaN, infinite or
  non-positive close; a date that is not an XNYS session (a weekend, a holiday, or
  before ``EARLIEST_SESSION``); a session in the future or not closed yet at ``now``
  (a live intraday value); a bad tick.

A *bad tick* is a close that sits more than ``bad_tick_pct`` percent above both its
neighbours or below both (a spike that reverses the next session). Neighbours are the
bars around it that passed the per-bar checks, and ``last_stored`` for the first bar
when it is older. The newest bar has no right neighbour, so it is never judged a bad
tick (a real crash is indistinguishable from one until the next session); two bad
ticks in a row look like a level shift and pass.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from itertools import pairwise

import numpy as np
import numpy.typing as npt

from app.market import calendar
from app.market.bars import Bar
from app.market.columns import BarColumns

# The Buttonwood Agreement, where the New York Stock Exchange begins: no session can be
# older. The calendar counts any weekday before its tables as a session, so without
# this floor ``0001-01-01`` (a Monday) would pass.
EARLIEST_SESSION = date(1792, 5, 17)


class BadData(Exception):
    """The whole response is unusable; ``reason`` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ValidationResult:
    """Bars fit to store (oldest first) and the ones refused, each with its reason."""

    accepted: Sequence[Bar]
    rejected: list[tuple[date | None, str]] = field(default_factory=list)


def validate_bars(
    bars: Sequence[Bar],
    *,
    now: datetime,
    last_stored: tuple[date, float] | None = None,
    bad_tick_pct: float = 25.0,
) -> ValidationResult:
    """Split ``bars`` into accepted and rejected; raise ``BadData`` for a broken response.

    ``now`` must be timezone-aware. ``last_stored`` is the newest (session, close) in
    the store, the left neighbour of the first bar for the bad-tick rule.
    """
    if not bars:
        raise BadData("empty response: no bars")
    today = now.astimezone(calendar.NEW_YORK).date()
    last_closed = _last_closed(now.replace(second=0, microsecond=0))
    # One calendar look-up for the whole response, not one per bar.
    first = max(min(bars[0].session, bars[-1].session), EARLIEST_SESSION)
    last = min(max(bars[0].session, bars[-1].session), today)
    if isinstance(bars, BarColumns) and _all_good(
        bars, first, last, min(today, last_closed), last_stored, bad_tick_pct
    ):
        return ValidationResult(accepted=bars)
    listed = list(bars)  # columns that break a rule are read as bars once
    _check_order(listed)
    sessions = _sessions(first, last)
    rejected: list[tuple[date | None, str]] = []
    candidates: list[Bar] = []
    for bar in listed:
        close = bar.close
        if (
            close > 0
            and close != math.inf
            and bar.session in sessions
            and bar.session <= today
            and bar.session <= last_closed
        ):
            candidates.append(bar)  # the common case: every rule below holds
            continue
        reason = _bar_problem(bar, today=today, last_closed=last_closed)
        if reason is None:
            candidates.append(bar)
        else:
            rejected.append((bar.session, reason))

    accepted: list[Bar] = []
    for index, bar in enumerate(candidates):
        previous = _left_close(candidates, index, last_stored)
        following = candidates[index + 1].close if index + 1 < len(candidates) else None
        reason = _bad_tick(bar, previous, following, bad_tick_pct)
        if reason is None:
            accepted.append(bar)
        else:
            rejected.append((bar.session, reason))
    rejected.sort(key=lambda item: item[0] or date.min)
    return ValidationResult(accepted=accepted, rejected=rejected)


@lru_cache(maxsize=16)
def _last_closed(minute: datetime) -> date:
    """:func:`calendar.last_closed_session` of a whole minute: closes fall on whole
    minutes, so every instant of that minute has the same answer (one poll asks once)."""
    return calendar.last_closed_session(minute)


@lru_cache(maxsize=64)
def _sessions(first: date, last: date) -> frozenset[date]:
    """The sessions from ``first`` to ``last``: the symbols of one poll share a window."""
    return frozenset(calendar.sessions_between(first, last))


def _all_good(
    bars: BarColumns,
    first: date,
    last: date,
    newest: date,
    last_stored: tuple[date, float] | None,
    pct: float,
) -> bool:
    """Whether every rule holds for every bar, checked on whole columns: strictly
    increasing sessions, each a closed XNYS session up to ``newest`` with a positive
    finite close, and no bad tick. False sends the bars through the rules one by one,
    which then find what is wrong."""
    days, closes = bars.sessions, bars.closes
    if (days[1:] <= days[:-1]).any():
        return False
    good = (
        (closes > 0)
        & (closes != math.inf)
        & (days <= np.datetime64(newest, "D"))
        & np.isin(days, _session_days(first, last))
    )
    if not good.all():
        return False
    # Bad ticks, with the same arithmetic as ``_bad_tick``: each bar between two
    # neighbours, and the first between the stored close before it and the second.
    previous, middle, following = closes[:-2], closes[1:-1], closes[2:]
    if (
        last_stored is not None
        and last_stored[0] < bars[0].session
        and last_stored[1] > 0
        and len(bars) > 1
    ):
        previous = np.concatenate(([last_stored[1]], previous))
        middle, following = closes[:-1], closes[1:]
    from_previous = (middle / previous - 1) * 100
    to_following = (middle / following - 1) * 100
    spikes = (from_previous > pct) & (to_following > pct)
    dips = (from_previous < -pct) & (to_following < -pct)
    return not (spikes | dips).any()


@lru_cache(maxsize=16)
def _session_days(first: date, last: date) -> npt.NDArray[np.datetime64]:
    """:func:`_sessions` as a sorted array."""
    return np.array(sorted(_sessions(first, last)), dtype="datetime64[D]")


def _check_order(bars: list[Bar]) -> None:
    counts = Counter(bar.session for bar in bars)
    duplicates = sorted(day for day, count in counts.items() if count > 1)
    if duplicates:
        listed = ", ".join(day.isoformat() for day in duplicates[:5])
        raise BadData(f"duplicate sessions in response: {listed}")
    for earlier, later in pairwise(bars):
        if later.session < earlier.session:
            raise BadData(
                "sessions out of order in response: "
                f"{later.session.isoformat()} after {earlier.session.isoformat()}"
            )


def _bar_problem(bar: Bar, *, today: date, last_closed: date) -> str | None:
    day = bar.session.isoformat()
    if not math.isfinite(bar.close):
        return f"close is {bar.close} on {day}"
    if bar.close <= 0:
        return f"non-positive close {bar.close:g} on {day}"
    if bar.session > today:
        return f"session {day} is in the future"
    if bar.session < EARLIEST_SESSION:
        return f"{day} is before the first NYSE session ({EARLIEST_SESSION.isoformat()})"
    if not calendar.is_session(bar.session):
        return f"{day} is not an XNYS session (weekend or holiday)"
    if bar.session > last_closed:
        return f"session {day} has not closed yet (live intraday value)"
    return None


def _left_close(
    candidates: list[Bar], index: int, last_stored: tuple[date, float] | None
) -> float | None:
    if index > 0:
        return candidates[index - 1].close
    if last_stored is not None and last_stored[0] < candidates[0].session:
        return last_stored[1]
    return None


def _bad_tick(bar: Bar, previous: float | None, following: float | None, pct: float) -> str | None:
    if previous is None or following is None or previous <= 0 or following <= 0:
        return None
    from_previous = (bar.close / previous - 1) * 100
    to_following = (bar.close / following - 1) * 100
    spike = from_previous > pct and to_following > pct
    dip = from_previous < -pct and to_following < -pct
    if not (spike or dip):
        return None
    return (
        f"bad tick on {bar.session.isoformat()}: close {bar.close:g} is "
        f"{from_previous:+.1f}% from the previous close {previous:g} and "
        f"{to_following:+.1f}% from the next close {following:g} (limit {pct:g}%)"
    )

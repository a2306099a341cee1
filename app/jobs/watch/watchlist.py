"""The watch list: the (symbol, rule) pairs whose newest close needs to move at most
``WATCH_DISTANCE_PCT`` % toward its trigger close to make a cross, with each one's
figures from the stored closes (the kernel's trigger close, as ``/v1/signals`` serves
it)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from app.market import calendar
from app.market import repository as market
from app.signals.analysis import Analysis, Rule, analyse, num

#: The cross a regime turns into, by the regime of the newest close.
_DIRECTION = {-1: "golden", 1: "death"}


@dataclass(frozen=True)
class Candidate:
    """One (symbol, rule) for the watched ``session``: its newest close and trigger.

    ``direction``: the cross the next close would make (``golden`` from a death
    regime, ``death`` from a golden one). ``needed_pct``: the move from ``close`` to
    ``trigger_close`` toward that cross, in % of ``close`` (0 or below: already
    beyond). ``skipped``: why it cannot be watched (then the figures may be None).
    """

    symbol: str
    rule: Rule
    session: date
    close_session: date | None = None
    close: float | None = None
    trigger_close: float | None = None
    direction: str | None = None
    needed_pct: float | None = None
    skipped: str | None = None

    def listed(self, within_pct: float) -> bool:
        return self.needed_pct is not None and self.needed_pct <= within_pct


def needed_pct(direction: str, price: float, trigger: float) -> float:
    """The move from ``price`` to ``trigger`` toward a ``direction`` cross, % of ``price``."""
    move = (trigger - price) if direction == "golden" else (price - trigger)
    return move / price * 100.0


def candidates(
    session: Session, day: date, rules: Sequence[Rule], symbols: Sequence[str]
) -> list[Candidate]:
    """Every symbol's figures for watching ``day`` under each rule (symbol order, then
    rule order). Only a symbol whose newest close is the session before ``day`` can be
    watched: the trigger close is that session's."""
    expected = calendar.previous_session(day)
    panel = market.load_panel(session, symbols)
    found: dict[tuple[str, Rule], Candidate] = {}
    for rule in rules:
        analysis = analyse(panel, rule)
        for row, symbol in enumerate(panel.symbols):
            found[(symbol, rule)] = _candidate(analysis, row, symbol, rule, day, expected)
    return [found[(symbol, rule)] for symbol in panel.symbols for rule in rules]


def _candidate(
    analysis: Analysis, row: int, symbol: str, rule: Rule, day: date, expected: date
) -> Candidate:
    if analysis.lengths[row] == 0:
        return Candidate(symbol, rule, day, skipped="no stored closes")
    newest = analysis.session_of(row, -1)
    close = float(analysis.panel.closes[row, -1])
    if newest != expected:
        state = "already stored" if newest >= day else f"expected {expected}"
        return Candidate(
            symbol, rule, day, newest, close, skipped=f"newest close {newest} ({state})"
        )
    direction = _DIRECTION.get(int(analysis.signals.regime[row, -1]))
    trigger = num(analysis.trigger[row])
    if direction is None or trigger is None:
        reason = "no regime yet" if direction is None else "no trigger close"
        return Candidate(symbol, rule, day, newest, close, trigger, direction, skipped=reason)
    return Candidate(
        symbol, rule, day, newest, close, trigger, direction, needed_pct(direction, close, trigger)
    )

"""Detection on ingest: turn a symbol's closes into stored events, retract undone ones.

Called inside the ingest transaction (it flushes, never commits), so the events and
their outbox rows land with the bars that caused them, or not at all.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.orm import Session

from app.market import repository as market
from app.market.bars import Bar
from app.market.columns import BarColumns
from app.signals import daily_path, repository
from app.signals.analysis import DEFAULT_RULE, DEFAULT_TURNS, Analysis, Rule, analyse
from app.signals.facts import Fact, facts_of
from app.signals.models import Event, event_id

log = logging.getLogger("crosswatch.events")


def _event(
    symbol: str,
    fact: Fact,
    *,
    live: bool,
    now: datetime,
    provenance: tuple[str | None, str] | None,
) -> Event:
    data: dict[str, Any] = {
        "session": fact.session.isoformat(),
        **fact.data,
        "source": provenance[0] if provenance else None,
        "instrument": provenance[1] if provenance else symbol,
    }
    return Event(
        id=event_id(symbol, fact.rule, fact.type, fact.session),
        type=fact.type,
        symbol=symbol,
        session=fact.session,
        rule=fact.rule,
        live=live,
        data=data,
        created_at=now,
    )


@dataclass(frozen=True)
class Change:
    """What one write did to a symbol's closes: the input of detection.

    ``previous_last``: the newest session stored before the write (None: a backfill).
    ``recheck_from``: set when stored closes were revised, where stored events are
    checked against the new data. ``version``: the symbol's data version after the
    write. ``appended``: the write's new sessions when it only appended after
    ``previous_last`` (what the daily path steps through), with their ``source`` and
    ``instrument``.
    """

    symbol: str
    previous_last: date | None
    recheck_from: date | None = None
    version: int | None = None
    appended: Sequence[Bar] = ()
    source: str | None = None
    instrument: str | None = None


class CarriedStates:
    """The daily path's memory: each symbol's :class:`~app.signals.daily_path.Carried`
    state after the last write this process detected on.

    A state is used only if the symbol's data version is exactly the one after that
    write (any other write, from any process, bumps it), the write only appended
    sessions, and the state covers every rule asked for; anything else takes the full
    path, which takes the state from it again. States change only when the write's transaction
    commits: a rolled-back write leaves the symbol without state (full path next time).
    """

    def __init__(self) -> None:
        self._states: dict[str, daily_path.Carried] = {}

    def __len__(self) -> int:
        return len(self._states)

    def usable(self, change: Change, rules: Sequence[Rule]) -> daily_path.Carried | None:
        state = self._states.get(change.symbol)
        if (
            state is None
            or change.version is None
            or state.version != change.version - 1
            or change.recheck_from is not None
            or change.previous_last is None
            or state.last != change.previous_last
            or not change.appended
            or not state.serves(rules)
        ):
            return None
        sessions = [bar.session for bar in change.appended]
        if sessions[0] <= state.last or any(b <= a for a, b in itertools.pairwise(sessions)):
            return None
        return state

    def newest(self, symbol: str, version: int) -> daily_path.Newest | None:
        """The symbol's newest-session figures if its state is at data ``version``."""
        state = self._states.get(symbol)
        if state is None or state.version != version:
            return None
        return state.newest

    def stage(self, session: Session, updates: dict[str, daily_path.Carried | None]) -> None:
        """Replace the states of ``updates`` once ``session`` commits (drop them now)."""
        for symbol in updates:
            self._states.pop(symbol, None)
        ready = {symbol: state for symbol, state in updates.items() if state is not None}
        if ready:

            def committed(_session: Session) -> None:
                self._states.update(ready)

            sqlalchemy_event.listen(session, "after_commit", committed, once=True)


def detect_and_record(
    session: Session,
    symbol: str,
    *,
    previous_last: date | None,
    recheck_from: date | None,
    now: datetime,
    rules: Iterable[Rule] = (),
) -> list[Event]:
    """Store the events the closes imply that are not stored yet; retract undone ones.

    Events on sessions after ``previous_last`` (the newest session stored before this
    write) are ``live``; everything found in older history (a backfill) is not.
    ``recheck_from``, set when stored closes were revised, is where stored events are
    checked against the new data. Returns the new events, retractions included.
    This is the full recompute over the symbol's whole history.
    """
    change = Change(symbol, previous_last, recheck_from)
    return detect_many(session, [change], now=now, rules=rules)[symbol]


def detect_many(
    session: Session,
    changes: Sequence[Change],
    *,
    now: datetime,
    rules: Iterable[Rule] = (),
    carried: CarriedStates | None = None,
) -> dict[str, list[Event]]:
    """Detection after a write of many symbols: the events each symbol's write added.

    A symbol whose write only appended sessions, and whose state after the previous
    write is in ``carried`` at the data version just before this write, takes the daily
    path: the kernel's :func:`~app.signals.kernel.advance` over the carried state and
    the newest closes, ``O(slow)`` per session whatever the history length. Every
    other symbol (a backfill, a revision, a rule or a process new to it) takes the
    full path: its whole history through the kernel, in chunks of symbols. Both give
    the same events; the full path then refills ``carried`` (once the transaction
    commits). Events are inserted with one bulk statement.
    """
    all_rules = list(dict.fromkeys([DEFAULT_RULE, *rules]))
    daily: list[tuple[Change, daily_path.Carried]] = []
    full: list[Change] = []
    for change in changes:
        entry = carried.usable(change, all_rules) if carried is not None else None
        if entry is not None:
            daily.append((change, entry))
        else:
            full.append(change)
    wanted: dict[str, list[Event]] = {change.symbol: [] for change in changes}
    updates: dict[str, daily_path.Carried | None] = {}
    if daily:
        stepped = daily_path.step([(c.appended, entry) for c, entry in daily], all_rules)
        for change, (found, entry) in zip((c for c, _ in daily), stepped, strict=True):
            written = (change.source, change.instrument or change.symbol)
            wanted[change.symbol] = [
                _event(change.symbol, fact, live=True, now=now, provenance=written)
                for fact in found
            ]
            updates[change.symbol] = _sourced(replace(entry, version=change.version), *written)
    for begin in range(0, len(full), _FULL_CHUNK):
        chunk = full[begin : begin + _FULL_CHUNK]
        facts, from_full = _full_facts(session, chunk, all_rules, keep=carried is not None)
        provenance = market.newest_provenance(session, [c.symbol for c in chunk])
        for change in chunk:
            newest = provenance.get(change.symbol)
            wanted[change.symbol] = [
                _event(
                    change.symbol,
                    fact,
                    live=change.previous_last is not None and fact.session > change.previous_last,
                    now=now,
                    provenance=(newest.source, newest.instrument) if newest else None,
                )
                for fact in facts[change.symbol]
            ]
            updates[change.symbol] = (
                _sourced(
                    replace(from_full[change.symbol], version=change.version),
                    newest.source if newest else None,
                    newest.instrument if newest else change.symbol,
                )
                if change.symbol in from_full and change.version is not None
                else None
            )
    fresh = repository.insert_new(session, [e for events in wanted.values() for e in events])
    fresh_by_symbol: dict[str, list[Event]] = {change.symbol: [] for change in changes}
    for event in fresh:
        fresh_by_symbol[event.symbol].append(event)
        log.log(
            logging.INFO if event.live else logging.DEBUG,
            "event",
            extra={
                "id": event.id,
                "type": event.type,
                "symbol": event.symbol,
                "session": str(event.session),
                "live": event.live,
            },
        )
    keys = [r.key for r in all_rules]
    for change in changes:
        if change.recheck_from is not None:
            fresh_by_symbol[change.symbol].extend(
                _retract(
                    session, change.symbol, wanted[change.symbol], change.recheck_from, now, keys
                )
            )
    if carried is not None:
        carried.stage(session, updates)
    return fresh_by_symbol


def _sourced(entry: daily_path.Carried, source: str | None, instrument: str) -> daily_path.Carried:
    if entry.newest is None:
        return entry
    return replace(entry, newest=replace(entry.newest, source=source, instrument=instrument))


# Symbols per full-history kernel run: bounds the matrices in memory.
_FULL_CHUNK = 500


def _full_facts(
    session: Session, changes: Sequence[Change], all_rules: Sequence[Rule], *, keep: bool
) -> tuple[dict[str, list[Fact]], dict[str, daily_path.Carried]]:
    """Every fact of each symbol's whole history, and (``keep``) its carried state."""
    symbols = [change.symbol for change in changes]
    panel = _panel(session, changes)
    lengths = np.count_nonzero(~np.isnan(panel.closes), axis=1)
    facts: dict[str, list[Fact]] = {symbol: [] for symbol in symbols}
    analyses: dict[str, Analysis] = {}
    for index, rule in enumerate(all_rules):
        rows = np.flatnonzero(lengths >= rule.slow)
        if not rows.size:
            continue
        analysis = analyse(panel, rule, DEFAULT_TURNS)
        analyses[rule.key] = analysis
        for row in rows.tolist():
            facts[symbols[row]].extend(
                fact
                for fact in facts_of(analysis, row)
                # Turns do not depend on the crossover rule: take them from the first.
                if index == 0 or fact.rule == rule.key
            )
    for symbol in symbols:
        facts[symbol].sort(key=lambda fact: (fact.session, fact.type))
    from_full = daily_path.carried_from_full(panel, all_rules, analyses) if keep else {}
    return facts, from_full


def _panel(session: Session, changes: Sequence[Change]) -> market.ClosePanel:
    """The close panel of the changed symbols. A backfill's closes are the bars it just
    wrote (nothing was stored before them): taken from memory, not read back; the other
    symbols' are loaded."""
    fresh = {
        change.symbol: change.appended
        for change in changes
        if change.previous_last is None and change.appended and _increasing(change.appended)
    }
    stored = [change.symbol for change in changes if change.symbol not in fresh]
    if not fresh:
        return market.load_panel(session, stored)
    loaded = market.load_panel(session, stored)
    loaded_width = loaded.closes.shape[1]
    width = max(loaded_width, *(len(bars) for bars in fresh.values()))
    symbols = [change.symbol for change in changes]
    closes = np.full((len(symbols), width), np.nan)
    days = np.full((len(symbols), width), np.datetime64("NaT"), dtype="datetime64[D]")
    loaded_row = {symbol: row for row, symbol in enumerate(loaded.symbols)}
    for row, symbol in enumerate(symbols):
        bars = fresh.get(symbol)
        if bars is not None and isinstance(bars, BarColumns):
            closes[row, width - len(bars) :] = bars.closes
            days[row, width - len(bars) :] = bars.sessions
        elif bars is not None:
            closes[row, width - len(bars) :] = [bar.close for bar in bars]
            days[row, width - len(bars) :] = np.array(
                [bar.session for bar in bars], dtype="datetime64[D]"
            )
        elif loaded_width:
            closes[row, width - loaded_width :] = loaded.closes[loaded_row[symbol]]
            days[row, width - loaded_width :] = loaded.sessions[loaded_row[symbol]]
    return market.ClosePanel(symbols, closes, days)


def _increasing(bars: Sequence[Bar]) -> bool:
    if isinstance(bars, BarColumns):
        return not (bars.sessions[1:] <= bars.sessions[:-1]).any()
    return all(a.session < b.session for a, b in itertools.pairwise(bars))


# Events not derived from stored closes, so never retracted by a revision of them.
_NOT_FROM_CLOSES = ("daily_brief", "snapshot", "test", "cross_watch", "cross_watch_missed")


def _retract(
    session: Session,
    symbol: str,
    wanted: Sequence[Event],
    since: date,
    now: datetime,
    rule_keys: list[str],
) -> list[Event]:
    still_true = {event.id for event in wanted}
    stale = [
        event
        for event in repository.active_for(session, symbol, [*rule_keys, DEFAULT_TURNS.key], since)
        if event.id not in still_true and event.type not in _NOT_FROM_CLOSES
    ]
    retractions = []
    for original in stale:
        retraction = Event(
            id=event_id(symbol, original.id, "retracted", original.session),
            type="retracted",
            symbol=symbol,
            session=original.session,
            rule=original.rule,
            live=True,
            data={
                "original_id": original.id,
                "original_type": original.type,
                "session": original.session.isoformat(),
                "reason": "revised closes no longer imply this event",
            },
            created_at=now,
        )
        retractions.extend(repository.insert_new(session, [retraction]))
        original.retracted_by = retraction.id
        log.info("event retracted", extra={"id": original.id, "by": retraction.id})
    session.flush()
    return retractions

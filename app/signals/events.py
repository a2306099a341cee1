"""Detection on ingest: turn a symbol's closes into stored events, retract undone ones.

Called inside the ingest transaction (it flushes, never commits), so the events and
their outbox rows land with the bars that caused them, or not at all.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

import numpy as np
from sqlalchemy.orm import Session

from app.market import repository as market
from app.signals import analysis as an
from app.signals import repository
from app.signals.analysis import DEFAULT_RULE, DEFAULT_TURNS, Rule
from app.signals.models import Event, event_id

log = logging.getLogger("crosswatch.events")


def _event(
    symbol: str,
    fact: an.Fact,
    *,
    live: bool,
    now: datetime,
    provenance: market.Provenance | None,
) -> Event:
    data: dict[str, Any] = {
        "session": fact.session.isoformat(),
        **fact.data,
        "source": provenance.source if provenance else None,
        "instrument": provenance.instrument if provenance else symbol,
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
    ``recheck_from``, set when
    stored closes were revised, is where stored events are checked against the new data.
    Returns the new events, retractions included, oldest first.
    """
    panel = market.load_panel(session, [symbol])
    provenance = market.newest_provenance(session, [symbol]).get(symbol)
    all_rules = list(dict.fromkeys([DEFAULT_RULE, *rules]))
    facts: list[an.Fact] = []
    history = int(np.count_nonzero(~np.isnan(panel.closes)))
    for index, rule in enumerate(all_rules):
        if rule.slow > history:
            continue
        analysis = an.analyse(panel, rule, DEFAULT_TURNS)
        facts.extend(
            fact
            for fact in an.facts_of(analysis, 0)
            # Turns do not depend on the crossover rule: take them from the first.
            if index == 0 or fact.rule == rule.key
        )
    wanted = [
        _event(
            symbol,
            fact,
            live=previous_last is not None and fact.session > previous_last,
            now=now,
            provenance=provenance,
        )
        for fact in facts
    ]
    fresh = repository.insert_new(session, wanted)
    retractions = (
        _retract(session, symbol, wanted, recheck_from, now, [r.key for r in all_rules])
        if recheck_from is not None
        else []
    )
    for event in fresh:
        log.info(
            "event",
            extra={
                "id": event.id,
                "type": event.type,
                "symbol": symbol,
                "session": str(event.session),
                "live": event.live,
            },
        )
    return [*fresh, *retractions]


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
        if event.id not in still_true and event.type not in ("daily_brief", "snapshot", "test")
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


def record_daily_brief(
    session: Session, signals: Sequence[dict[str, Any]], *, now: datetime, live: bool
) -> Event | None:
    """One ``daily_brief`` event after a poll: a line of state per symbol."""
    if not signals:
        return None
    newest = max(signal["session"] for signal in signals)
    lines = []
    for signal in signals:
        regime = signal["regime"] or "no regime"
        gap = signal["gap_pct"]
        lines.append(
            {
                "symbol": signal["symbol"],
                "session": signal["session"].isoformat(),
                "close": signal["close"],
                "regime": signal["regime"],
                "gap_pct": gap,
                "trigger_close": signal["trigger_close"],
                "drawdown_pct": signal["drawdown_pct"],
                "stale": signal["stale"],
                "source": signal["source"],
                "instrument": signal["instrument"],
                "line": f"{signal['symbol']} {signal['close']:.2f} {regime}"
                + (f", gap {gap:+.2f}%" if gap is not None else ""),
            }
        )
    brief = Event(
        id=event_id("*", "brief", "daily_brief", newest),
        type="daily_brief",
        symbol="*",
        session=newest,
        rule="brief",
        live=live,
        data={"session": newest.isoformat(), "symbols": lines},
        created_at=now,
    )
    fresh = repository.insert_new(session, [brief])
    return fresh[0] if fresh else None

"""Gathers the status facts from the store, the signal book and the calendar.

Read-only. The store is checked first (``health.store_problem``, a fresh look at the
store rather than the pool): when it is unreachable, broken, read-only or behind on
migrations the report says so and carries nothing else, rather than failing the page.
A store that fails between that check and the reads is reported the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.db.engine import Database
from app.errors import Unavailable
from app.market import calendar
from app.market.progress import RUNNING_POLLS, stored_progress
from app.market.repository import recent_runs, results_of
from app.settings import Settings
from app.signals.analysis import CROSS_TYPES
from app.signals.book import SignalBook, Snapshot
from app.signals.service import all_signals
from app.status import breadth, components, repository
from app.status.brief import BriefCard
from app.status.brief import newest as newest_brief
from app.status.chart import CHART_SESSIONS, BreadthSeries, Series
from app.status.components import Run
from app.status.health import StoreProblem, failed, store_problem
from app.status.schemas import (
    Component,
    CrossMarker,
    DeliveryHealth,
    Endpoint,
    Overall,
    PollRunOut,
    RecentEvent,
    StatusReport,
    SymbolCard,
)
from app.status.watch import WatchCard
from app.status.watch import newest as newest_watch

RECENT_RUNS = 10
PROVIDER_LOOKBACK_RUNS = 20
DELIVERY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Gathered:
    """The report plus each symbol's and each universe's chart series (presentation
    only, not in the JSON)."""

    report: StatusReport
    charts: dict[str, Series] = field(default_factory=dict)
    breadth_charts: dict[str, BreadthSeries] = field(default_factory=dict)
    brief: BriefCard | None = None
    watch: WatchCard | None = None


def sessions_behind(last: date, expected: date) -> int:
    """Closed sessions after ``last`` up to ``expected``: 0 when fresh."""
    if last >= expected:
        return 0
    return len(calendar.sessions_between(last + timedelta(days=1), expected))


def gather(db: Database, book: SignalBook, settings: Settings, now: datetime) -> Gathered:
    problem = store_problem(db)
    if problem is not None:
        return _store_only(problem, now)
    try:
        return _gather(db, book, settings, now)
    except (SQLAlchemyError, Unavailable) as exc:
        return _store_only(failed(exc), now)


def _store_only(problem: StoreProblem, now: datetime) -> Gathered:
    store = components.store(problem)
    report = StatusReport(
        generated_at=now,
        overall=Overall(state=store.state, summary=f"Store {store.state}: {problem.reason}"),
        components=[store],
        symbols=[],
        events=[],
        deliveries=None,
        polls=[],
        next_poll_at=None,
    )
    return Gathered(report)


def _gather(db: Database, book: SignalBook, settings: Settings, now: datetime) -> Gathered:
    store = components.store(None)
    delay = calendar.close_delay(settings.poll_time)
    with db.transaction(write=False) as session:
        runs = [
            Run(run, results_of(session, run.id))
            for run in recent_runs(session, PROVIDER_LOOKBACK_RUNS)
        ]
        cards, charts = _symbols(session, book, now)
        breadth_cards, breadth_charts = breadth.cards(session, book)
        events = [
            RecentEvent(
                id=event.id,
                type=event.type,
                symbol=event.symbol,
                session=event.session,
                live=event.live,
                created_at=repository.aware(event.created_at),
            )
            for event in repository.recent_events(session)
        ]
        facts = repository.delivery_facts(session, now, DELIVERY_WINDOW)
        brief = newest_brief(session)
        # Polls of other processes as last stored; this process's own, as they are now.
        running = {**stored_progress(session), **RUNNING_POLLS.of(db.url)}
    parts = [store, components.scheduler(runs, now, delay, running)]
    parts += [components.provider(name, runs) for name in settings.providers]
    if facts is not None:
        parts.append(components.delivery_worker(facts, now))
    report = StatusReport(
        generated_at=now,
        overall=_overall(parts, cards),
        components=parts,
        symbols=cards,
        events=events,
        deliveries=None if facts is None else _delivery_health(facts, now),
        polls=[_run_out(run) for run in runs[:RECENT_RUNS]],
        next_poll_at=calendar.next_poll_time(now, delay),
        breadth=breadth_cards,
    )
    return Gathered(report, charts, breadth_charts, brief, newest_watch(db))


def _overall(parts: list[Component], cards: list[SymbolCard]) -> Overall:
    """The worst component, except that one failing provider only degrades the service
    while another still answers: the data keeps flowing through the fallback."""
    providers = [part.state for part in parts if part.kind == "provider"]
    others = [part.state for part in parts if part.kind != "provider"]
    if providers and all(state == "down" for state in providers):
        others.append("down")
    elif any(state in ("degraded", "down") for state in providers):
        others.append("degraded")
    state = components.worst(others)
    troubles = [f"{part.name} {part.state}" for part in parts if part.state in ("degraded", "down")]
    stale = [
        f"{card.symbol} {card.sessions_behind} sessions behind" for card in cards if card.stale
    ]
    if stale:
        state = components.worst([state, "degraded"])
        troubles.append("stale data: " + ", ".join(stale))
    if not troubles:
        return Overall(state="operational", summary="All systems operational")
    return Overall(state=state, summary="; ".join(troubles))


def _symbols(
    session: Session, book: SignalBook, now: datetime
) -> tuple[list[SymbolCard], dict[str, Series]]:
    snapshot = book.snapshot(session)
    cards: list[SymbolCard] = []
    charts: dict[str, Series] = {}
    for signal in all_signals(book, session, now):
        series = _series(snapshot, signal["symbol"])
        cards.append(_card(signal, series))
        charts[series.symbol] = series
    return cards, charts


def _series(snapshot: Snapshot, symbol: str) -> Series:
    analysis = snapshot.analysis
    row = snapshot.row(symbol)
    length = int(analysis.lengths[row])
    window = slice(analysis.panel.closes.shape[1] - min(length, CHART_SESSIONS), None)
    days = analysis.panel.sessions[row, window]
    return Series(
        symbol=symbol,
        sessions=[day.astype(object) for day in days],
        closes=analysis.panel.closes[row, window].copy(),
        fast=np.asarray(analysis.signals.fast_ma[row, window], dtype=np.float64),
        slow=np.asarray(analysis.signals.slow_ma[row, window], dtype=np.float64),
        cross=np.asarray(analysis.signals.cross[row, window], dtype=np.int8),
        fast_window=analysis.rule.fast,
        slow_window=analysis.rule.slow,
    )


def _card(signal: dict[str, Any], series: Series) -> SymbolCard:
    markers = [
        CrossMarker(
            type=CROSS_TYPES[int(series.cross[i])],
            session=series.sessions[i],
            close=float(series.closes[i]),
        )
        for i in np.flatnonzero(series.cross).tolist()
    ]
    behind = sessions_behind(signal["session"], signal["expected_session"])
    return SymbolCard(
        symbol=signal["symbol"],
        session=signal["session"],
        expected_session=signal["expected_session"],
        stale=behind > 0,
        sessions_behind=behind,
        close=signal["close"],
        regime=signal["regime"],
        gap_pct=signal["gap_pct"],
        fast_value=signal["fast_value"],
        slow_value=signal["slow_value"],
        last_cross=signal["last_cross"],
        sessions_since_cross=signal["sessions_since_cross"],
        trigger_close=signal["trigger_close"],
        flat_sessions_to_cross=signal["flat_sessions_to_cross"],
        drawdown_pct=signal["drawdown_pct"],
        source=signal["source"],
        instrument=signal["instrument"],
        crosses_in_chart=markers,
        chart_sessions=len(series.sessions),
    )


def _delivery_health(facts: repository.DeliveryFacts, now: datetime) -> DeliveryHealth:
    return DeliveryHealth(
        attempts_24h=facts.attempts,
        succeeded_24h=facts.succeeded,
        success_rate_24h=facts.succeeded / facts.attempts if facts.attempts else None,
        backlog=facts.backlog,
        due=facts.due,
        oldest_due_age_seconds=(
            None if facts.oldest_due is None else (now - facts.oldest_due).total_seconds()
        ),
        subscriptions=facts.subscriptions,
        failing=[Endpoint(subscription_id=i, since=s, reason=r) for i, s, r in facts.failing],
        disabled=[Endpoint(subscription_id=i, since=s, reason=r) for i, s, r in facts.disabled],
    )


def _run_out(entry: Run) -> PollRunOut:
    run, results = entry.run, entry.results
    started = repository.aware(run.started_at)
    finished = None if run.finished_at is None else repository.aware(run.finished_at)
    errors = [f"{r.symbol}: {r.error}" for r in results if r.error]
    if not errors and run.error:
        errors = [run.error]
    return PollRunOut(
        id=run.id,
        trigger=run.trigger,
        status=run.status,
        started_at=started,
        finished_at=finished,
        duration_seconds=None if finished is None else (finished - started).total_seconds(),
        added=sum(r.added for r in results),
        revised=sum(r.revised for r in results),
        rejected=sum(r.rejected for r in results),
        errors=errors,
    )

"""Judging each moving part: operational, degraded or down, with the reason in words.

Pure functions over rows already read: the poll runs (newest first) with their
per-symbol results, the delivery facts, and the clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.market import calendar
from app.market.models import PollResult, PollRun
from app.market.progress import PollProgress
from app.status.health import StoreProblem
from app.status.repository import DeliveryFacts, aware
from app.status.schemas import Component, PollInProgress, State

POLL_GRACE = timedelta(minutes=30)
POLL_STUCK = timedelta(hours=1)
DELIVERY_LAG_DEGRADED = timedelta(minutes=5)
DELIVERY_LAG_DOWN = timedelta(hours=1)
SEVERITY: dict[State, int] = {"operational": 0, "unknown": 0, "degraded": 1, "down": 2}


@dataclass(frozen=True)
class Run:
    """A poll run and its per-symbol results."""

    run: PollRun
    results: list[PollResult]


def stamp(moment: datetime) -> str:
    return aware(moment).strftime("%Y-%m-%d %H:%M UTC")


def ago(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 1:
        return f"{int(seconds)} s"
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


def worst(states: Sequence[State]) -> State:
    return max(states, key=lambda state: SEVERITY[state], default="operational")


def store(problem: StoreProblem | None) -> Component:
    if problem is None:
        return Component(
            name="store",
            kind="store",
            state="operational",
            reason="reachable, migrations current",
        )
    return Component(name="store", kind="store", state=problem.state, reason=problem.reason)


def scheduler(
    runs: Sequence[Run],
    now: datetime,
    delay: timedelta,
    running: Mapping[int, PollProgress] | None = None,
) -> Component:
    """Do polls run on time, and did the last one finish well? ``running`` (run id →
    progress) are the polls this process is running: the newest says "n of N"."""
    next_at = calendar.next_poll_time(now, delay)
    details: dict[str, str | int | float | PollInProgress | None] = {
        "next_poll_at": next_at.isoformat()
    }
    if not runs:
        return Component(
            name="scheduler",
            kind="scheduler",
            state="degraded",
            reason=f"no poll has run yet; the next is due {stamp(next_at)}",
            details=details,
        )
    latest = runs[0].run
    details.update(last_run=latest.id, last_status=latest.status)
    details["last_started_at"] = aware(latest.started_at).isoformat()
    if latest.finished_at is not None:
        details["last_duration_seconds"] = round(
            (aware(latest.finished_at) - aware(latest.started_at)).total_seconds(), 3
        )
    state: State = "operational"
    reason = f"last poll #{latest.id} {latest.status} at {stamp(latest.started_at)}"
    progress = (running or {}).get(latest.id) if latest.status == "running" else None
    if progress is not None:
        details["in_progress"] = PollInProgress(
            run=latest.id,
            done=progress.done,
            total=progress.total,
            added=progress.added,
            failed=progress.failed,
        )
        reason = (
            f"poll #{latest.id} in progress: {progress.done:,} of {progress.total:,} symbols "
            f"({progress.failed:,} failed), started {stamp(latest.started_at)}"
        )
    running_for = now - aware(latest.started_at)
    if latest.status == "running" and running_for > POLL_STUCK:
        state, reason = (
            "degraded",
            f"poll #{latest.id} has been running for {ago(running_for.total_seconds())}",
        )
    elif latest.status == "failed":
        state = "degraded"
        reason = f"the last poll #{latest.id} ({stamp(latest.started_at)}) failed for every symbol"
    elif latest.status == "partial":
        state = "degraded"
        reason = f"the last poll #{latest.id} ({stamp(latest.started_at)}) failed for some symbols"
    due = calendar.next_poll_time(aware(latest.started_at), delay)  # the first one missed
    if now - due > POLL_GRACE:
        late = ago((now - due).total_seconds())
        state = "down" if now - due > timedelta(days=1) else "degraded"
        reason = (
            f"no poll since the one due {stamp(due)} ({late} late); "
            f"the last was {stamp(latest.started_at)}"
        )
    return Component(
        name="scheduler", kind="scheduler", state=state, reason=reason, details=details
    )


def _verdicts(run: Run, provider: str) -> tuple[list[str], dict[str, str]]:
    """Symbols ``provider`` answered in ``run`` and, per symbol, why it failed."""
    answered: list[str] = []
    failed: dict[str, str] = {}
    for result in run.results:
        reasons = [a.get("reason", "") for a in result.attempts if a.get("provider") == provider]
        if reasons:
            failed[result.symbol] = reasons[-1]
        elif result.source == provider and result.error is None:
            answered.append(result.symbol)
    return answered, failed


def _reason_text(failed: dict[str, str]) -> str:
    reasons = list(dict.fromkeys(failed.values()))
    if len(reasons) == 1:
        return reasons[0]
    return "; ".join(f"{symbol}: {reason}" for symbol, reason in sorted(failed.items()))


def provider(name: str, runs: Sequence[Run]) -> Component:
    """Judged by the newest poll that tried ``name``."""
    for run in runs:
        answered, failed = _verdicts(run, name)
        if not answered and not failed:
            continue
        details: dict[str, str | int | float | None] = {
            "run": run.run.id,
            "answered": ", ".join(answered) or None,
            "failed": ", ".join(sorted(failed)) or None,
        }
        when = f"poll #{run.run.id} ({stamp(run.run.started_at)})"
        if not failed:
            reason = f"answered for {', '.join(answered)} in {when}"
            return Component(
                name=name, kind="provider", state="operational", reason=reason, details=details
            )
        state: State = "degraded" if answered else "down"
        scope = f"for {', '.join(sorted(failed))}" if answered else "for every symbol"
        reason = f"failed {scope} in {when}: {_reason_text(failed)}"
        return Component(name=name, kind="provider", state=state, reason=reason, details=details)
    return Component(
        name=name,
        kind="provider",
        state="unknown",
        reason="not tried in the recent polls" if runs else "no poll has run yet",
    )


def delivery_worker(facts: DeliveryFacts, now: datetime) -> Component:
    """Behind when due deliveries wait: the worker is stopped, stuck or overloaded."""
    details: dict[str, str | int | float | None] = {"backlog": facts.backlog, "due": facts.due}
    if facts.oldest_due is None:
        reason = f"{facts.backlog} deliveries scheduled for retry" if facts.backlog else "idle"
        return Component(
            name="delivery worker",
            kind="delivery_worker",
            state="operational",
            reason=reason,
            details=details,
        )
    waited = now - facts.oldest_due
    details["oldest_due_age_seconds"] = round(waited.total_seconds(), 1)
    state: State = "operational"
    if waited > DELIVERY_LAG_DOWN:
        state = "down"
    elif waited > DELIVERY_LAG_DEGRADED:
        state = "degraded"
    reason = f"{facts.due} deliveries due, the oldest waiting {ago(waited.total_seconds())}" + (
        "; is a delivery worker running?" if state != "operational" else ""
    )
    return Component(
        name="delivery worker", kind="delivery_worker", state=state, reason=reason, details=details
    )

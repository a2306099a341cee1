"""Poll-run bookkeeping: a run row at the start, one result per symbol, the outcome."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.market.models import PollResult, PollRun
from app.market.polls import SymbolOutcome


def start_run(session: Session, trigger: str, *, now: datetime) -> int:
    run = PollRun(trigger=trigger, started_at=now, status="running")
    session.add(run)
    session.flush()
    return run.id


def record_result(session: Session, run_id: int, outcome: SymbolOutcome) -> None:
    record_results(session, run_id, [outcome])


def record_results(session: Session, run_id: int, outcomes: Sequence[SymbolOutcome]) -> None:
    """Insert or replace the results of ``outcomes`` (distinct symbols) in one statement:
    per-symbol ORM merges were half of a 5,000-symbol daily poll."""
    rows = [
        {
            "poll_run_id": run_id,
            "symbol": outcome.symbol,
            "source": outcome.source,
            "instrument": outcome.instrument,
            "added": outcome.added,
            "revised": outcome.revised,
            "rejected": len(outcome.rejected),
            "rejections": [
                {"session": day.isoformat() if day else "", "reason": reason}
                for day, reason in outcome.rejected
            ],
            "attempts": [
                {"provider": provider, "instrument": instrument, "reason": reason}
                for provider, instrument, reason in outcome.attempts
            ],
            "error": outcome.error,
        }
        for outcome in outcomes
    ]
    if not rows:
        return
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    # The table, not the entity: the ORM's bulk insert took a Python step per row.
    statement = insert(PollResult.metadata.tables[PollResult.__tablename__])
    statement = statement.on_conflict_do_update(
        index_elements=["poll_run_id", "symbol"],
        set_={name: statement.excluded[name] for name in rows[0] if name not in _RESULT_KEY},
    )
    session.execute(statement, rows)


_RESULT_KEY = ("poll_run_id", "symbol")


def finish_run(
    session: Session, run_id: int, outcomes: list[SymbolOutcome], *, now: datetime
) -> str:
    run = session.get_one(PollRun, run_id)
    failed = [o for o in outcomes if not o.ok]
    if not outcomes or not failed:
        run.status = "ok"
    elif len(failed) == len(outcomes):
        run.status = "failed"
    else:
        run.status = "partial"
    if failed:
        run.error = "; ".join(f"{o.symbol}: {o.error}" for o in failed)[:4000]
    run.finished_at = now
    return run.status


def recent_runs(session: Session, limit: int = 20) -> list[PollRun]:
    return list(session.scalars(select(PollRun).order_by(PollRun.id.desc()).limit(limit)))


def results_of(session: Session, run_id: int) -> list[PollResult]:
    return list(
        session.scalars(
            select(PollResult).where(PollResult.poll_run_id == run_id).order_by(PollResult.symbol)
        )
    )

"""How far a running poll is: its counts in memory in the polling process, and as last
stored in its run row for every other process.

The poll job writes both; the status page reads both (this process's counts win).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.market.models import PollRun


@dataclass(frozen=True)
class PollProgress:
    """How far a poll is: ``done`` of ``total`` symbols fetched or failed, the sessions
    ``added`` by the batches stored so far, and the symbols ``failed`` so far."""

    done: int
    total: int
    added: int
    failed: int


def save_progress(session: Session, run_id: int, progress: PollProgress) -> None:
    """Store ``progress`` in the run row of ``run_id``, for other processes' status."""
    session.execute(
        update(PollRun)
        .where(PollRun.id == run_id)
        .values(
            symbols_total=progress.total,
            symbols_done=progress.done,
            sessions_added=progress.added,
            symbols_failed=progress.failed,
        )
    )


def stored_progress(session: Session) -> dict[int, PollProgress]:
    """Run id → the progress last stored by each running poll, in any process."""
    rows = session.execute(
        select(
            PollRun.id,
            PollRun.symbols_done,
            PollRun.symbols_total,
            PollRun.sessions_added,
            PollRun.symbols_failed,
        ).where(PollRun.status == "running", PollRun.symbols_total.is_not(None))
    ).tuples()
    return {
        run: PollProgress(done or 0, total or 0, added or 0, failed or 0)
        for run, done, total, added, failed in rows
    }


class RunningPolls:
    """The progress of the polls running in this process, by store URL and run id.

    Kept in memory because it changes once per symbol: the status of a store, read in
    the same process (``serve`` runs the scheduler beside the API), shows "n of N" as
    it is now. A poll run by another process shows what it last stored in its run row
    (:func:`stored_progress`, written about once a second).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._polls: dict[str, dict[int, PollProgress]] = {}

    def update(self, store: str, run_id: int, progress: PollProgress) -> None:
        with self._lock:
            self._polls.setdefault(store, {})[run_id] = progress

    def end(self, store: str, run_id: int) -> None:
        with self._lock:
            self._polls.get(store, {}).pop(run_id, None)

    def of(self, store: str) -> dict[int, PollProgress]:
        """Run id → progress of the polls of ``store`` running now."""
        with self._lock:
            return dict(self._polls.get(store, {}))


RUNNING_POLLS = RunningPolls()

"""A running poll stores its progress in its run row, so that the status of another
process (a separate ``crosswatch scheduler``) shows "n of N" too."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from app.db.engine import Database
from app.jobs.runtime import poller
from app.market.models import PollRun
from app.market.progress import RUNNING_POLLS, PollProgress, stored_progress
from app.settings import Settings, load_settings
from app.signals.book import SignalBook
from app.status.service import gather

NOW = datetime(2025, 4, 8, 23, 0, tzinfo=UTC)
SYMBOLS = ["A", "B", "C", "D", "E"]


def folder_of(tmp_path: Path) -> Path:
    folder = tmp_path / "csv"
    folder.mkdir()
    for n, symbol in enumerate(SYMBOLS):
        rows = "".join(f"2025-04-0{day},{100 + n + day}\n" for day in (1, 2, 3, 4, 7))
        (folder / f"{symbol}.csv").write_text("date,close\n" + rows)
    return folder


def test_a_running_poll_stores_its_progress_and_status_elsewhere_shows_it(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    settings: Settings = load_settings(
        database_url=database_url,
        seed=False,
        providers="csv",
        csv_dir=str(folder_of(tmp_path)),
        provider_concurrency="1",
        _env_file=None,
    )
    seen: list[tuple[PollProgress, dict[int, PollProgress], str]] = []

    def on_progress(progress: PollProgress) -> None:
        with db.transaction(write=False) as session:
            stored = stored_progress(session)
        # What a status page in another process sees: the stored row only.
        (run,) = RUNNING_POLLS.of(db.url)
        RUNNING_POLLS.end(db.url, run)
        status = gather(db, SignalBook(), settings, NOW).report
        (scheduler,) = [part for part in status.components if part.kind == "scheduler"]
        seen.append((progress, stored, scheduler.reason))

    async def go() -> None:
        async with poller(db, settings, clock=lambda: NOW) as target:
            target.progress_seconds = 0.0
            await target.poll(SYMBOLS, trigger="manual", on_progress=on_progress)

    asyncio.run(go())
    run = seen[0][1].keys()
    (run_id,) = run
    for done, (progress, stored, reason) in enumerate(seen, start=1):
        assert progress.done == done
        # Stored after the previous symbol: its counts, of all 5.
        assert stored[run_id].done == done - 1 and stored[run_id].total == 5
        assert f"poll #{run_id} in progress: {done - 1:,} of 5 symbols" in reason
    with db.transaction(write=False) as session:
        assert stored_progress(session) == {}  # finished: no longer running
        row = session.scalars(select(PollRun)).one()
        assert (row.status, row.symbols_total, row.symbols_done) == ("ok", 5, 5)

"""Long commands show progress on stderr: plain lines when it is not a terminal, a rich
bar when it is; stdout keeps only the command's output."""

from __future__ import annotations

import asyncio
import io
import os
import pty
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app.db.engine import Database
from app.jobs.poll import Poller, PollReport
from app.market.progress import PollProgress
from app.market.providers import ProviderChain
from app.market.providers.csvdir import CsvDirProvider
from app.settings import Settings
from app.terminal import PlainProgress, duration, plural
from tests.conftest import ROOT, data_file, fixed_clock, run_cli


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_come_every_few_seconds_and_always_at_the_end() -> None:
    clock, out = FakeClock(), io.StringIO()
    shown = PlainProgress("poll", "symbols", 2000, out, every=5, clock=clock)
    for done, at in ((1, 1.0), (40, 4.9), (75, 5.0), (80, 6.0), (150, 10.0)):
        clock.now = 100.0 + at
        shown.update(done, f"{done - 2} added, 2 failed")
    clock.now = 199.0
    shown.update(2000, "1998 added, 2 failed")  # no line: finish() says it is done
    clock.now = 200.0
    shown.finish(2000, "1998 added, 2 failed")
    assert out.getvalue().splitlines() == [
        "poll: 75/2,000 symbols, 73 added, 2 failed, 15.0/s, ETA 2m08s",
        "poll: 150/2,000 symbols, 148 added, 2 failed, 15.0/s, ETA 2m03s",
        "poll: 2,000/2,000 symbols, 1998 added, 2 failed, 20.0/s, done in 1m40s",
    ]


def test_counted_nouns_and_durations() -> None:
    assert [plural(n, "session") for n in (0, 1, 2)] == ["0 sessions", "1 session", "2 sessions"]
    assert plural(1, "live event") == "1 live event"
    assert [duration(s) for s in (0.04, 59.94, 132.4, 3600 + 5 * 60 + 1)] == [
        "0.0s",
        "59.9s",
        "2m12s",
        "1h05m",
    ]


def _csv_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "csv"
    folder.mkdir()
    for name in ("rut_daily.csv", "gspc_daily.csv"):
        symbol = name.split("_")[0].upper()
        (folder / f"{symbol}.csv").write_text(data_file(name).read_text())
    return folder


def _poll(
    db: Database, settings: Settings, folder: Path, symbols: list[str]
) -> tuple[PollReport, list[PollProgress]]:
    chain = ProviderChain([CsvDirProvider(folder)], {})
    seen: list[PollProgress] = []
    poller = Poller(db, settings, chain, clock=fixed_clock)
    report = asyncio.run(poller.poll(symbols, trigger="manual", on_progress=seen.append))
    return report, seen


def test_the_poller_reports_each_symbol_done_with_counts(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    report, seen = _poll(db, settings, _csv_dir(tmp_path), ["^RUT", "NOPE", "^GSPC"])
    # Stored in one batch at the end: sessions added are counted once it is stored.
    assert seen == [
        PollProgress(done=1, total=3, added=0, failed=0),
        PollProgress(done=2, total=3, added=0, failed=1),
        PollProgress(done=3, total=3, added=0, failed=1),
    ]
    assert report.added == 9811 + 24777


def test_sessions_added_are_counted_as_each_batch_is_stored(
    db: Database, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.jobs.poll.BATCH_SYMBOLS", 1)
    _, seen = _poll(db, settings, _csv_dir(tmp_path), ["^RUT", "^GSPC"])
    assert [(p.done, p.added) for p in seen] == [(1, 9811), (2, 9811 + 24777)]


PROGRESS_LINE = r"[\d,.]+/s, (ETA \S+|done in \S+)$"


def test_poll_prints_plain_progress_lines_when_stderr_is_not_a_terminal(
    database_url: str, tmp_path: Path
) -> None:
    env = {"CROSSWATCH_PROVIDERS": "csv", "CROSSWATCH_CSV_DIR": str(_csv_dir(tmp_path))}
    result = run_cli("poll", "^RUT", "NOPE", database_url=database_url, env=env)
    assert result.returncode == 1
    final = [line for line in result.stderr.splitlines() if line.startswith("poll: ")]
    assert len(final) >= 1
    assert re.match(r"poll: 2/2 symbols, 9,811 added, 1 failed, " + PROGRESS_LINE, final[-1])
    assert "poll:" not in result.stdout
    assert result.stdout.startswith("^RUT: 9811 added, 0 revised, 0 rejected, 114 events")


def test_replay_and_import_print_plain_progress(database_url: str) -> None:
    rut = str(data_file("rut_daily.csv"))
    imported = run_cli("import", "^RUT", rut, database_url=database_url)
    assert imported.returncode == 0, imported.stderr
    assert re.search(r"^import: 9,811/9,811 rows, " + PROGRESS_LINE, imported.stderr, re.M)
    replay_args = ("replay", "IWM2", rut, "--from", "2025-08-01", "--to", "2025-08-12")
    replayed = run_cli(*replay_args, "--interval", "0", database_url=database_url)
    assert replayed.returncode == 0, replayed.stderr
    lines = replayed.stderr.splitlines()
    assert re.match(r"replay: 8/8 sessions, 1 event, " + PROGRESS_LINE, lines[-1]), lines
    assert replayed.stdout.splitlines()[-1] == "replayed IWM2: 1 live event"


def test_poll_shows_a_rich_bar_when_stderr_is_a_terminal(database_url: str, tmp_path: Path) -> None:
    controller, terminal = pty.openpty()
    env = {
        **os.environ,
        "CROSSWATCH_DATABASE_URL": database_url,
        "CROSSWATCH_SEED": "false",
        "CROSSWATCH_PROVIDERS": "csv",
        "CROSSWATCH_CSV_DIR": str(_csv_dir(tmp_path)),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "poll", "^RUT"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
    )
    os.close(terminal)
    screen = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closed: the process has exited
                return
            if not chunk:
                return
            screen.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    stdout, _ = process.communicate(timeout=120)
    reader.join(30)
    os.close(controller)
    text = screen.decode(errors="replace")
    assert process.returncode == 0, text
    assert "━" in text and "1/1" in text and "9,811 added, 0 failed" in text
    assert "poll: 1/1" not in text, "the plain lines are for pipes and files"
    assert stdout.startswith("^RUT: 9811 added"), "stdout, piped, gets no progress"

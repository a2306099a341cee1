"""Soak: ten years of ``^GSPC`` replayed at full speed to 100 webhook subscriptions.

Real processes: ``crosswatch replay ^GSPC gspc_daily.csv --from D --interval 0`` writes
sessions, events and outbox rows into a SQLite store while ``crosswatch worker``
delivers them to a local aiohttp receiver (a third process) that verifies every
signature with the ``standardwebhooks`` reference library as it arrives and logs each
``webhook-id``. The subscriptions mix filters (every event; crosses of ``^GSPC``;
``^RUT`` only, which matches nothing; a custom EMA 20/100 rule; peaks and troughs), and
the expected deliveries are worked out independently from the stored live events.

Figures: every live event delivered to every matching subscription exactly once by id
(a duplicate is acceptable only as a retry: each is counted, with the attempts logged
per delivery), bad signatures, delivery lag (event stored -> received), and the RSS of
the replay and the worker sampled every 0.5 s (first, after warm-up, last, max).

Run: ``.venv/bin/python benchmarks/soak.py [--years 10] [--subscriptions 100]
[--history-from DATE]``. ``--history-from`` drops older history from the file (the
replay's per-session cost grows with the stored history); the default keeps it all.
The last line is ``soak missing=M unexpected=U duplicates=D bad_signatures=B
replay_rss_mb=warm/last/max worker_rss_mb=warm/last/max lag_p50_s=L``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support import realdata  # noqa: E402

GSPC_FILE = realdata.csv_path("gspc_daily.csv")
RULE_BOUND_TYPES = frozenset({"golden_cross", "death_cross", "cross_approaching"})
DEFAULT_RULE_KEY = "sma:50:200"
SAMPLE_SECONDS = 0.5
WARM_UP_SAMPLES = 10
DRAIN_SECONDS = 120.0


# -- the receiver process -----------------------------------------------------------


def receive(log_path: Path, secrets_path: Path) -> None:
    """Serve POST /s/{n} on 127.0.0.1 (prints ``port N``); verify and log every request."""
    from aiohttp import web
    from standardwebhooks import Webhook

    secrets: dict[str, str] = {}
    log = log_path.open("a", buffering=1)

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        received_at = time.time()
        if request.path not in secrets and secrets_path.exists():
            secrets.update(json.loads(secrets_path.read_text()))
        entry: dict[str, Any] = {"path": request.path, "t": received_at}
        entry["id"] = request.headers.get("webhook-id")
        try:
            payload = Webhook(secrets[request.path]).verify(body, dict(request.headers))
            entry.update(verified=True, type=payload["type"], event=payload["data"]["id"])
        except Exception as exc:  # a bad signature is a figure, not a crash
            entry.update(verified=False, error=f"{type(exc).__name__}: {exc}")
        log.write(json.dumps(entry) + "\n")
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        print(f"port {site._server.sockets[0].getsockname()[1]}", flush=True)  # type: ignore[union-attr]
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(main())


# -- subscriptions and the independent expectation ----------------------------------


@dataclass(frozen=True)
class Filter:
    """What one subscription asked for, restated here (not read from the app)."""

    event_types: tuple[str, ...] = ()
    symbols: tuple[str, ...] | None = None
    rule: tuple[int, int, str] | None = None

    @property
    def rule_string(self) -> str:
        if self.rule is None:
            return DEFAULT_RULE_KEY
        fast, slow, kind = self.rule
        return f"{kind}:{fast}:{slow}"

    def wants(self, event_type: str, symbol: str, rule: str) -> bool:
        """DESIGN §5 matching: types (empty: all), symbols (null: all), and for cross
        events the subscription's rule."""
        if self.event_types and event_type not in self.event_types:
            return False
        if self.symbols is not None and symbol not in self.symbols:
            return False
        return event_type not in RULE_BOUND_TYPES or rule == self.rule_string


FILTERS = (
    Filter(),
    Filter(event_types=("golden_cross", "death_cross"), symbols=("^GSPC",)),
    Filter(symbols=("^RUT",)),
    Filter(event_types=("golden_cross", "death_cross", "cross_approaching"), rule=(20, 100, "ema")),
    Filter(event_types=("peak", "trough")),
)


def subscribe(
    database_url: str, base_url: str, count: int
) -> tuple[dict[str, Filter], dict[str, str]]:
    """``count`` subscriptions cycling through FILTERS; their filters and secrets by path."""
    from app.auth.service import Identity
    from app.db.engine import Database
    from app.webhooks import service
    from app.webhooks.schemas import SubscriptionIn, SubscriptionRule
    from app.webhooks.ssrf import system_resolver

    owner = Identity(key_id=None, name="soak", admin=True)
    policy = service.UrlPolicy(resolver=system_resolver, allow_private=True)
    filters: dict[str, Filter] = {}
    secrets: dict[str, str] = {}
    db = Database(database_url)
    try:
        with db.transaction() as session:
            for n in range(count):
                wanted = FILTERS[n % len(FILTERS)]
                path = f"/s/{n}"
                rule = None
                if wanted.rule is not None:
                    rule = SubscriptionRule(
                        fast=wanted.rule[0], slow=wanted.rule[1], type=wanted.rule[2]
                    )  # type: ignore[arg-type]
                body = SubscriptionIn(
                    url=f"{base_url}{path}",
                    event_types=list(wanted.event_types),  # type: ignore[arg-type]
                    symbols=list(wanted.symbols) if wanted.symbols else None,
                    rule=rule,
                )
                _row, secret = service.create_subscription(
                    session, owner, body, now=datetime.now(UTC), urls=policy
                )
                filters[path], secrets[path] = wanted, secret
    finally:
        db.dispose()
    return filters, secrets


# -- processes and memory -------------------------------------------------------------


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


@dataclass
class Memory:
    samples: list[float] = field(default_factory=list)

    def add(self, value: float | None) -> None:
        if value is not None:
            self.samples.append(value)

    @property
    def first(self) -> float:
        return self.samples[0] if self.samples else 0.0

    @property
    def warm(self) -> float:
        """After warm-up (imports, the history transaction): a quarter of the way in,
        and at least WARM_UP_SAMPLES in."""
        if not self.samples:
            return 0.0
        return self.samples[
            min(max(len(self.samples) // 4, WARM_UP_SAMPLES), len(self.samples) - 1)
        ]

    @property
    def last(self) -> float:
        return self.samples[-1] if self.samples else 0.0

    @property
    def peak(self) -> float:
        return max(self.samples, default=0.0)

    def text(self) -> str:
        return f"{self.first:.0f}/{self.warm:.0f}/{self.last:.0f}/{self.peak:.0f}"


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {seconds:g} s waiting for {what}")
        time.sleep(0.1)


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the run ----------------------------------------------------------------------------


@dataclass
class SoakResult:
    sessions: int
    replay_seconds: float
    live_events: int
    event_types: dict[str, int]
    expected: int
    receipts: int
    missing: int
    unexpected: int
    duplicates: int
    bad_signatures: int
    attempts_per_delivery: dict[int, int]
    delivery_status: dict[str, int]
    lag_p50_s: float
    lag_max_s: float
    drain_seconds: float
    replay_rss: Memory
    worker_rss: Memory

    def lines(self) -> list[str]:
        per_s = self.sessions / self.replay_seconds if self.replay_seconds else 0.0
        return [
            f"replay: {self.sessions} sessions in {self.replay_seconds:.1f} s ({per_s:.1f}/s), "
            f"{self.live_events} live events {self.event_types}",
            f"deliveries: expected {self.expected}, receipts {self.receipts}, "
            f"missing {self.missing}, unexpected {self.unexpected}, duplicates {self.duplicates}"
            f", bad signatures {self.bad_signatures}",
            f"attempts per delivery {self.attempts_per_delivery}, status {self.delivery_status}",
            f"lag event stored -> received: p50 {self.lag_p50_s:.2f} s, max "
            f"{self.lag_max_s:.2f} s; drained {self.drain_seconds:.1f} s after the replay",
            f"RSS MB first/warm/last/max: replay {self.replay_rss.text()}, "
            f"worker {self.worker_rss.text()}",
        ]

    def summary(self) -> str:
        replay, worker = self.replay_rss, self.worker_rss
        return (
            f"soak missing={self.missing} unexpected={self.unexpected} "
            f"duplicates={self.duplicates} bad_signatures={self.bad_signatures} "
            f"replay_rss_mb={replay.warm:.0f}/{replay.last:.0f}/{replay.peak:.0f} "
            f"worker_rss_mb={worker.warm:.0f}/{worker.last:.0f}/{worker.peak:.0f} "
            f"lag_p50_s={self.lag_p50_s:.2f}"
        )


def _input_file(workdir: Path, history_from: date | None) -> Path:
    if history_from is None:
        return GSPC_FILE
    lines = GSPC_FILE.read_text().splitlines(keepends=True)
    kept = [line for line in lines[1:] if line[:10] >= history_from.isoformat()]
    trimmed = workdir / "gspc.csv"
    trimmed.write_text(lines[0] + "".join(kept))
    return trimmed


def _first_fed(file: Path, years: int) -> date:
    last = date.fromisoformat(file.read_text().rstrip().rsplit("\n", 1)[-1][:10])
    return last.replace(year=last.year - years) + timedelta(days=1)


def run_soak(
    *,
    years: int = 10,
    subscriptions: int = 100,
    history_from: date | None = None,
    workdir: Path,
    progress: Callable[[str], None] = lambda _line: None,
) -> SoakResult:
    from sqlalchemy import text

    from app.db.engine import Database
    from app.db.migrate import upgrade

    database_url = f"sqlite:///{workdir / 'soak.db'}"
    db = Database(database_url)
    upgrade(db.engine)
    source = _input_file(workdir, history_from)
    start = _first_fed(source, years)
    env = {
        **os.environ,
        "CROSSWATCH_DATABASE_URL": database_url,
        "CROSSWATCH_SEED": "false",
        "CROSSWATCH_WEBHOOK_ALLOW_PRIVATE": "true",
        "CROSSWATCH_LOG_LEVEL": "WARNING",
    }
    receipts_log, secrets_file = workdir / "receipts.jsonl", workdir / "secrets.json"
    receiver = subprocess.Popen(
        [sys.executable, __file__, "receive", str(receipts_log), str(secrets_file)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    processes: list[subprocess.Popen[Any]] = [receiver]
    try:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline().split()[1])
        filters, secrets = subscribe(database_url, f"http://127.0.0.1:{port}", subscriptions)
        secrets_file.write_text(json.dumps(secrets))
        app = [sys.executable, "-m", "app"]
        with (workdir / "worker.log").open("w") as worker_out:
            worker = subprocess.Popen(
                [*app, "worker"], env=env, cwd=ROOT, stdout=worker_out, stderr=subprocess.STDOUT
            )
        processes.append(worker)
        progress(f"replaying ^GSPC from {start} ({source.name}) to {subscriptions} subscriptions")
        started = time.perf_counter()
        with (workdir / "replay.log").open("w") as replay_out:
            replay = subprocess.Popen(
                [
                    *app,
                    "replay",
                    "^GSPC",
                    str(source),
                    "--from",
                    start.isoformat(),
                    "--interval",
                    "0",
                ],
                env=env,
                cwd=ROOT,
                stdout=replay_out,
                stderr=subprocess.STDOUT,
            )
        processes.append(replay)
        replay_rss, worker_rss = Memory(), Memory()
        while replay.poll() is None:
            replay_rss.add(rss_mb(replay.pid))
            worker_rss.add(rss_mb(worker.pid))
            time.sleep(SAMPLE_SECONDS)  # the sampling period, not a synchronisation
        replay_seconds = time.perf_counter() - started
        if replay.returncode != 0:
            raise RuntimeError(f"replay failed:\n{(workdir / 'replay.log').read_text()[-3000:]}")
        worker_rss.add(rss_mb(worker.pid))

        with db.engine.connect() as connection:
            sessions = connection.execute(
                text("SELECT count(*) FROM daily_bars WHERE session >= :start"), {"start": start}
            ).scalar_one()
            live = connection.execute(
                text("SELECT id, type, symbol, rule, created_at FROM events WHERE live")
            ).all()
        expected = {
            (path, event_id)
            for event_id, event_type, symbol, rule, _created in live
            for path, wanted in filters.items()
            if wanted.wants(event_type, symbol, rule)
        }

        def entries() -> list[dict[str, Any]]:
            if not receipts_log.exists():
                return []
            return [json.loads(line) for line in receipts_log.read_text().splitlines() if line]

        def drained() -> bool:
            with db.engine.connect() as connection:
                pending = connection.execute(
                    text("SELECT count(*) FROM deliveries WHERE status = 'pending'")
                ).scalar_one()
            return pending == 0 and {(e["path"], e["id"]) for e in entries()} >= expected

        drain_started = time.perf_counter()
        _wait(drained, DRAIN_SECONDS, "every delivery")
        drain_seconds = time.perf_counter() - drain_started
        _stop(worker)
        worker_rss.add(rss_mb(worker.pid))
        with db.engine.connect() as connection:
            attempts = Counter(
                n
                for (n,) in connection.execute(
                    text("SELECT count(*) FROM delivery_attempts GROUP BY delivery_id")
                )
            )
            statuses = dict(
                connection.execute(
                    text("SELECT status, count(*) FROM deliveries GROUP BY status")
                ).all()
            )
    finally:
        for process in reversed(processes):
            _stop(process)
        db.dispose()

    got = entries()
    counts = Counter((e["path"], e["id"]) for e in got)
    created = {event_id: _aware(created) for event_id, _t, _s, _r, created in live}
    first_receipt: dict[tuple[str, str], float] = {}
    for entry in got:
        first_receipt.setdefault((entry["path"], entry["id"]), entry["t"])
    lags = sorted(
        t - created[key[1]].timestamp() for key, t in first_receipt.items() if key[1] in created
    )
    return SoakResult(
        sessions=int(sessions),
        replay_seconds=replay_seconds,
        live_events=len(live),
        event_types=dict(Counter(event_type for _id, event_type, *_ in live)),
        expected=len(expected),
        receipts=len(got),
        missing=len(expected - set(counts)),
        unexpected=len(set(counts) - expected),
        duplicates=sum(n - 1 for n in counts.values()),
        bad_signatures=sum(not e["verified"] for e in got),
        attempts_per_delivery=dict(attempts),
        delivery_status=statuses,
        lag_p50_s=statistics.median(lags) if lags else 0.0,
        lag_max_s=lags[-1] if lags else 0.0,
        drain_seconds=drain_seconds,
        replay_rss=replay_rss,
        worker_rss=worker_rss,
    )


def _aware(value: datetime | str) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "receive":
        receive(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--subscriptions", type=int, default=100)
    parser.add_argument("--history-from", type=date.fromisoformat, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crosswatch-soak-") as workdir:
        result = run_soak(
            years=args.years,
            subscriptions=args.subscriptions,
            history_from=args.history_from,
            workdir=Path(workdir),
            progress=lambda line: print(line, flush=True),
        )
    for line in result.lines():
        print(line)
    print(result.summary())


if __name__ == "__main__":
    main()

"""SQLite under load: a ``serve`` process answers many concurrent API reads (and a few
writes) while a ``replay`` and a ``poll`` write in two other processes. Every answer
is a 2xx: no "database is locked" reaches a user, and neither writer fails."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from app.db.engine import Database
from app.market.service import read_csv_file
from tests.conftest import data_file
from tests.faults.support import Process, crosswatch, crosswatch_env, running, serving
from tests.support.yahoo import YahooFake

READERS = 16
WRITERS = 2
READS = ("/v1/signals", "/v1/events?limit=100", "/v1/symbols", "/v1/signals/%5EGSPC", "/readyz")
TOKEN = "faults-admin-token-0123456789"
#: The replay stores ^GSPC's history before this session in one transaction (a long
#: write), then writes the sessions from it on, one transaction each.
REPLAY_FROM = "2026-08-03"


async def _hammer(base: str, writers_done: Callable[[], bool]) -> Counter[tuple[str, int]]:
    """Concurrent GETs (and subscription create/delete) until both writers exit."""
    answers: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []
    auth = {"Authorization": f"Bearer {TOKEN}"}
    limits = httpx.Limits(max_connections=READERS + WRITERS)

    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def read(offset: int) -> None:
            n = offset
            while not writers_done():
                path = READS[n % len(READS)]
                n += 1
                response = await client.get(path)
                answers[(path.split("?")[0], response.status_code)] += 1
                before_replay = path.endswith("%5EGSPC") and response.status_code == 404
                if response.status_code != 200 and not before_replay:
                    failures.append(f"GET {path}: {response.status_code} {response.text[:300]}")

        async def write(n: int) -> None:
            while not writers_done():
                body = {"url": f"http://127.0.0.1:9/w{n}", "symbols": ["^IXIC"]}
                created = await client.post("/v1/webhooks", json=body, headers=auth)
                answers[("POST /v1/webhooks", created.status_code)] += 1
                if created.status_code != 201:
                    failures.append(f"POST: {created.status_code} {created.text[:300]}")
                    continue
                sid = created.json()["id"]
                deleted = await client.delete(f"/v1/webhooks/{sid}", headers=auth)
                answers[("DELETE /v1/webhooks", deleted.status_code)] += 1
                if deleted.status_code != 204:
                    failures.append(f"DELETE: {deleted.status_code} {deleted.text[:300]}")

        await asyncio.gather(
            *(read(n) for n in range(READERS)), *(write(n) for n in range(WRITERS))
        )
    assert not failures, "\n".join(failures[:10])
    return answers


def test_sqlite_readers_never_see_database_is_locked_while_two_processes_write(
    db: Database, database_url: str
) -> None:
    if not db.is_sqlite:
        pytest.skip("the locking under test is SQLite's")
    fake = YahooFake(series={"^RUT": read_csv_file(data_file("rut_daily.csv"))[-2000:]})
    with fake.serve() as yahoo_url:
        env = crosswatch_env(
            database_url,
            symbols="^RUT,^GSPC",
            yahoo_base_url=yahoo_url,
            admin_token=TOKEN,
            webhook_allow_private="true",
            # Under test is SQLite's locking, not overload: the API's writers may wait as
            # long as the other processes hold the write lock (a poll's batch, a replay
            # step) instead of being shed after the default 2 s.
            db_queue_seconds="30",
        )
        with serving(env, "--no-scheduler", "--no-worker") as (server, base):
            started = time.monotonic()
            gspc = str(data_file("gspc_daily.csv"))
            replay_args = crosswatch(
                "replay", "^GSPC", gspc, "--from", REPLAY_FROM, "--interval", "0"
            )
            with (
                running(replay_args, env) as replay,
                running(crosswatch("poll", "^RUT"), env) as poll,
            ):
                writers: list[Process] = [replay, poll]
                answers = asyncio.run(
                    _hammer(base, lambda: all(w.popen.poll() is not None for w in writers))
                )
                seconds = time.monotonic() - started
                assert replay.wait(5) == 0, replay.output()
                assert poll.wait(5) == 0, poll.output()
            outputs = {"serve": server.output(), "replay": replay.output(), "poll": poll.output()}

    assert "replayed ^GSPC:" in outputs["replay"]
    assert "^RUT: 2000 added" in outputs["poll"]
    for name, text in outputs.items():
        assert "database is locked" not in text, f"{name}: {text[-2000:]}"
    reads = sum(n for (path, _), n in answers.items() if not path.startswith(("POST", "DELETE")))
    writes = answers[("POST /v1/webhooks", 201)] + answers[("DELETE /v1/webhooks", 204)]
    print(
        f"\n{reads} reads, {writes} API writes in {seconds:.1f} s beside two writers: "
        f"{dict(answers)}"
    )
    assert reads >= 50 and writes >= 4, "too little load to prove anything"

"""A provider that answers slower than ``PROVIDER_TIMEOUT_SECONDS``: each request times
out, the poll still finishes (the other symbols are stored), the slow symbol fails with
the timeout as its reason, and ``/v1/status`` shows the provider degraded, then down,
saying why. The API keeps answering while the poll waits on the provider."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote

import httpx
import pytest

from app.market.service import read_csv_file
from tests.conftest import data_file
from tests.faults.support import crosswatch, crosswatch_env, running, serving
from tests.support.wait import wait_until
from tests.support.yahoo import YahooFake

TIMEOUT = "did not answer within 1 s"


@dataclass
class SlowYahoo(YahooFake):
    """Answers for the symbols in ``slow`` only after ``release`` (or 30 s)."""

    slow: set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    slow_requests: int = 0

    def respond(self, path: str, query: dict[str, list[str]]) -> tuple[int, bytes]:
        if unquote(path.rsplit("/", 1)[-1]) in self.slow:
            self.slow_requests += 1
            self.release.wait(30)
        return super().respond(path, query)


@pytest.fixture
def slow_yahoo() -> Iterator[tuple[SlowYahoo, str]]:
    series = {
        symbol: read_csv_file(data_file(name))[-400:]
        for symbol, name in (("^RUT", "rut_daily.csv"), ("^GSPC", "gspc_daily.csv"))
    }
    fake = SlowYahoo(series=series, slow={"^GSPC"})
    with fake.serve() as url:
        try:
            yield fake, url
        finally:
            fake.release.set()


def _status(base: str) -> dict[str, object]:
    response = httpx.get(f"{base}/v1/status", timeout=10)
    assert response.status_code == 200
    body: dict[str, object] = response.json()
    return body


def _yahoo(status: dict[str, object]) -> dict[str, str]:
    components: list[dict[str, str]] = status["components"]  # type: ignore[assignment]
    return next(c for c in components if c["name"] == "yahoo")


def _finished_polls(base: str) -> list[dict[str, object]]:
    polls: list[dict[str, object]] = _status(base)["polls"]  # type: ignore[assignment]
    return [p for p in polls if p["finished_at"] is not None]


def test_slow_provider_times_out_the_poll_finishes_and_status_says_so(
    database_url: str, slow_yahoo: tuple[SlowYahoo, str]
) -> None:
    fake, yahoo_url = slow_yahoo
    env = crosswatch_env(
        database_url,
        symbols="^RUT,^GSPC",
        yahoo_base_url=yahoo_url,
        provider_timeout_seconds="1",
        provider_retries="1",
    )
    with serving(env, "--no-worker") as (server, base):
        # The scheduler's start-up poll is waiting on the slow provider: the API answers.
        wait_until(lambda: fake.slow_requests >= 1, 30, "the poll to ask for ^GSPC")
        assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200
        assert httpx.get(f"{base}/v1/signals", timeout=5).status_code == 200

        wait_until(lambda: bool(_finished_polls(base)), 30, "the start-up poll to finish")
        (startup,) = _finished_polls(base)
        assert startup["status"] == "partial"
        assert startup["added"] == 400, "the poll did not finish the other symbol"
        errors: list[str] = startup["errors"]  # type: ignore[assignment]
        assert len(errors) == 1 and errors[0].startswith("^GSPC: ") and TIMEOUT in errors[0]
        assert fake.slow_requests == 2, "one try and one retry, each timed out"
        yahoo = _yahoo(_status(base))
        assert yahoo["state"] == "degraded"
        assert "for ^GSPC" in yahoo["reason"] and TIMEOUT in yahoo["reason"]
        assert httpx.get(f"{base}/v1/signals/%5ERUT", timeout=5).status_code == 200

        with running(crosswatch("poll", "^GSPC"), env) as poll:
            assert poll.wait(60) == 1
        assert f"^GSPC: failed: no provider could fetch ^GSPC: yahoo (^GSPC): Yahoo {TIMEOUT}" in (
            poll.output()
        )
        wait_until(lambda: len(_finished_polls(base)) == 2, 10, "the manual poll on record")
        status = _status(base)
        yahoo = _yahoo(status)
        assert yahoo["state"] == "down"
        assert "for every symbol" in yahoo["reason"] and TIMEOUT in yahoo["reason"]
        overall: dict[str, str] = status["overall"]  # type: ignore[assignment]
        assert overall["state"] == "down" and "yahoo down" in overall["summary"]
        assert server.popen.poll() is None

"""``/v1/signals`` served from memory: rendered once per data change, and still fresh.

A write in this process is seen at the next request; a write by another process (here:
another engine on the same store) within ``recheck_seconds``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from app.api.app import create_app
from app.db.engine import Database
from app.jobs import ingest
from app.market import repository
from app.market.bars import Bar
from app.market.repository import readers
from app.market.service import read_csv_file
from app.settings import Settings
from app.signals import service
from app.signals.book import RECHECK_SECONDS, SignalBook
from app.signals.schemas import SignalList
from tests.conftest import data_file

NOW = datetime(2026, 8, 24, 23, 0, tzinfo=UTC)
LAST = date(2026, 8, 21)


class Ticks:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(db: Database) -> Database:
    bars = read_csv_file(data_file("rut_daily.csv"))
    with db.transaction() as session:
        ingest.store_and_detect(
            session,
            "^RUT",
            [b for b in bars if b.session < LAST],
            source="import",
            clock=lambda: NOW,
        )
    return db


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def client(store: Database, settings: Settings, ticks: Ticks) -> Iterator[TestClient]:
    app = create_app(settings, clock=lambda: NOW)
    with TestClient(app) as test_client:
        app.state.signal_book = SignalBook(monotonic=ticks)
        yield test_client


def _statements(db: Database) -> list[str]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(db.engine, "before_cursor_execute", record)
    return seen


def _append(db: Database, close: float) -> None:
    """A write through another engine: what a poll in another process looks like."""
    with db.transaction() as session:
        ingest.store_and_detect(
            session, "^RUT", [Bar(LAST, close)], source="yahoo", clock=lambda: NOW
        )


def test_the_body_is_what_the_schema_renders_and_is_rendered_once(
    client: TestClient, store: Database
) -> None:
    first = client.get("/v1/signals")
    assert first.headers["content-type"] == "application/json"
    book: SignalBook = client.app.state.signal_book  # type: ignore[attr-defined]
    with store.transaction(write=False) as session:
        expected = SignalList.model_validate(
            {"signals": service.all_signals(SignalBook(), session, NOW)}
        ).model_dump(mode="json")
    assert first.json() == expected
    assert first.json()["signals"][0]["session"] == "2026-08-20"
    again = client.get("/v1/signals")
    assert again.content == first.content
    key = ("signals", book.expected_session(NOW))
    assert book.cached_body(key) == first.content


def test_a_write_elsewhere_is_seen_after_the_recheck_interval(
    client: TestClient, store: Database, ticks: Ticks
) -> None:
    before = client.get("/v1/signals").json()["signals"][0]
    one_before = client.get("/v1/signals/%5ERUT").json()
    _append(store, 2300.0)
    # Within the interval the cached body is served without asking the store.
    assert client.get("/v1/signals").json()["signals"][0] == before
    assert client.get("/v1/signals/%5ERUT").json() == one_before
    ticks.now += RECHECK_SECONDS + 0.01
    after = client.get("/v1/signals").json()["signals"][0]
    assert (after["session"], after["close"]) == ("2026-08-21", 2300.0)
    assert client.get("/v1/signals/%5ERUT").json()["close"] == 2300.0


def test_a_write_in_this_process_is_seen_at_once(client: TestClient, settings: Settings) -> None:
    assert [s["symbol"] for s in client.get("/v1/signals").json()["signals"]] == ["^RUT"]
    # Through the app's own engine (as the symbols routes and an in-process poll write).
    services = client.app.state.services  # type: ignore[attr-defined]
    _append(services.db, 2400.0)
    assert client.get("/v1/signals").json()["signals"][0]["close"] == 2400.0


def test_cached_reads_do_not_touch_the_store(client: TestClient, ticks: Ticks) -> None:
    client.get("/v1/signals")
    client.get("/v1/signals/%5ERUT")
    services = client.app.state.services  # type: ignore[attr-defined]
    statements = _statements(services.db)
    for _ in range(5):
        assert client.get("/v1/signals").status_code == 200
        assert client.get("/v1/signals/%5ERUT").status_code == 200
    assert statements == []
    ticks.now += RECHECK_SECONDS + 0.01
    client.get("/v1/signals")
    # One look at the data versions, no reload: the data did not change.
    queries = [sql for sql in statements if sql != "BEGIN"]
    assert len(queries) == 1
    assert "data_version" in queries[0]


def test_custom_rules_and_unknown_symbols_are_not_cached(client: TestClient) -> None:
    custom = client.get("/v1/signals/%5ERUT", params={"fast": 20, "slow": 100, "type": "ema"})
    assert custom.json()["rule"] == {"fast": 20, "slow": 100, "type": "ema"}
    missing = client.get("/v1/signals/NOPE")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert json.loads(missing.content)["detail"].startswith("unknown symbol")


def test_one_request_verifies_while_the_others_keep_the_verified_body(
    client: TestClient, ticks: Ticks
) -> None:
    """No thundering herd: when the verification ages out, only the first caller goes
    to the store; until it is done (at most another interval) the rest are served the
    verified body. A write in this process still hides it from everyone at once."""
    body = client.get("/v1/signals").content
    book: SignalBook = client.app.state.signal_book  # type: ignore[attr-defined]
    key = ("signals", book.expected_session(NOW))
    ticks.now += RECHECK_SECONDS + 0.01
    assert book.cached_body(key) is None  # this caller verifies
    assert book.cached_body(key) == body  # the others are not sent to the store
    assert book.cached_body(key) == body
    ticks.now += RECHECK_SECONDS + 0.01
    assert book.cached_body(key) is None  # the check never finished: another caller tries
    assert client.get("/v1/signals").content == body  # a verification completes
    assert book.cached_body(key) == body
    book.recheck()  # a write committed in this process
    assert book.cached_body(key) is None
    assert book.cached_body(key) is None


def test_cached_bodies_are_answered_before_routing_exactly_as_the_routes_answer(
    client: TestClient, ticks: Ticks, store: Database
) -> None:
    """Without a query string the cached body is sent before routing: the same bytes
    and headers as the route's, counted under the route's template in the metrics; a
    body that needs verifying goes to the route (which verifies), so a write elsewhere
    is still seen after the interval."""
    book: SignalBook = client.app.state.signal_book  # type: ignore[attr-defined]
    routed_calls: list[str] = []
    cached_body = book.cached_body

    def spy(key: Any, *, verify: bool = True) -> bytes | None:
        if verify:  # only the routes verify; the pre-routing path never does
            routed_calls.append("routed")
        return cached_body(key, verify=verify)

    book.cached_body = spy  # type: ignore[method-assign]
    try:
        first = client.get("/v1/signals/%5ERUT")  # renders through the route
        assert routed_calls == ["routed"]
        again = client.get("/v1/signals/%5ERUT")  # answered before routing
        listed = client.get("/v1/signals")  # routed (first render)
        listed_again = client.get("/v1/signals")
        assert routed_calls == ["routed", "routed"]
        assert again.content == first.content and listed_again.content == listed.content
        for answer in (again, listed_again):
            assert answer.headers["content-type"] == "application/json"
            assert int(answer.headers["content-length"]) == len(answer.content)
        with_query = client.get("/v1/signals/%5ERUT", params={"type": "sma"})
        assert with_query.content == first.content
        assert routed_calls == ["routed"] * 3
        metrics = client.get("/metrics").text
        count = (
            'crosswatch_http_request_duration_seconds_count{method="GET",route="%s",status="200"}'
        )
        assert f"{count % '/v1/signals/{symbol}'} 3.0" in metrics
        assert f"{count % '/v1/signals'} 2.0" in metrics
        _append(store, 2350.0)
        ticks.now += RECHECK_SECONDS + 0.01
        assert client.get("/v1/signals/%5ERUT").json()["close"] == 2350.0
        assert routed_calls == ["routed"] * 4  # the check went through the route
    finally:
        book.cached_body = cached_body  # type: ignore[method-assign]


def test_a_snapshot_read_past_a_write_serves_the_reader_that_asked_for_it(
    store: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snapshot is read in a transaction of its own, so it may hold a write the
    asking reader does not see yet (SQLite: its read transaction began before it). It is
    kept by the data versions it holds, and that reader's later calls take it too
    instead of reading the store again for every call of one request."""
    reads: list[repository.StoreSnapshot] = []
    read_snapshot = repository.read_snapshot

    def counted(session: Any) -> repository.StoreSnapshot:
        reads.append(read_snapshot(session))
        return reads[-1]

    monkeypatch.setattr(repository, "read_snapshot", counted)
    monkeypatch.setattr(readers, "_SQLITE_ARROW_SYMBOLS", 0)  # read apart at any size
    book = SignalBook()
    other = Database(store.url)
    try:
        with store.transaction(write=False) as session:
            seen = repository.data_versions(session)
            _append(other, 2300.0)
            first = book.snapshot(session)
            again = book.snapshot(session)
        assert first.fingerprint == {"^RUT": seen["^RUT"] + 1}
        assert again is first and len(reads) == 1
        with store.transaction(write=False) as session:
            assert book.snapshot(session) is first
        assert len(reads) == 1
    finally:
        other.dispose()

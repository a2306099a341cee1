"""A real local receiver (aiohttp server on 127.0.0.1, in its own thread), a movable
clock near the real time (so the reference library's 5-minute timestamp check holds),
and helpers that store subscriptions and events through the real services."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from standardwebhooks import Webhook

from app.auth.service import Identity
from app.db.engine import Database
from app.settings import Settings, load_settings
from app.signals.models import Event, event_id
from app.webhooks import service
from app.webhooks.models import Subscription
from app.webhooks.schemas import SubscriptionIn
from app.webhooks.ssrf import system_resolver

OWNER = Identity(key_id=None, name="admin-token", admin=True)


class MovableClock:
    """Starts at the real time; ``advance`` moves it forward."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


#: An answer computed from the request body: (status, response body).
Answer = Callable[[bytes], tuple[int, bytes]]


def slack_answer(body: bytes) -> tuple[int, bytes]:
    """As a Slack incoming webhook answers: 400 ``invalid_payload`` for a body that is
    not a JSON object, 400 ``no_text`` without a non-empty ``text``, else 200 ``ok``."""
    try:
        payload = json.loads(body)
    except ValueError:
        return 400, b"invalid_payload"
    if not isinstance(payload, dict):
        return 400, b"invalid_payload"
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        return 400, b"no_text"
    return 200, b"ok"


def discord_answer(body: bytes) -> tuple[int, bytes]:
    """As a Discord webhook answers: 400 for invalid JSON, a missing or empty
    ``content`` or one over 2,000 characters; else 204 with no body."""
    try:
        payload = json.loads(body)
    except ValueError:
        return 400, b'{"message": "The request body contains invalid JSON.", "code": 50109}'
    content = payload.get("content") if isinstance(payload, dict) else None
    if not isinstance(content, str) or not content.strip():
        return 400, b'{"message": "Cannot send an empty message", "code": 50006}'
    if len(content) > 2000:
        return 400, b'{"content": ["Must be 2000 or fewer in length."]}'
    return 204, b""


@dataclass
class Receiver:
    """Programmable answers per path: a list of statuses (the last one repeats),
    optional extra headers, ``hang`` (never answers until the test ends), or an
    :data:`Answer` computed from the body (``answers``: Slack's, Discord's)."""

    base_url: str = ""
    received: list[Received] = field(default_factory=list)
    statuses: dict[str, list[int]] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    hanging: set[str] = field(default_factory=set)
    bodies: dict[str, bytes] = field(default_factory=dict)
    answers: dict[str, Answer] = field(default_factory=dict)
    delay: float = 0.0
    changed: threading.Condition = field(default_factory=threading.Condition)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not predicate(self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(left)
        return True

    def at(self, path: str) -> list[Received]:
        return [r for r in self.received if r.path == path]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self.changed:
            self.received.append(Received(request.path, dict(request.headers), body))
            self.changed.notify_all()
        if request.path in self.hanging:
            await asyncio.sleep(3600)
        if self.delay:
            await asyncio.sleep(self.delay)
        if request.path in self.answers:
            status, answer = self.answers[request.path](body)
            return web.Response(status=status, body=answer)
        statuses = self.statuses.get(request.path, [200])
        status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
        body = self.bodies.get(request.path, f"answer {status}".encode())
        return web.Response(status=status, body=body, headers=self.headers.get(request.path))


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    runner_box: list[web.AppRunner] = []

    async def start() -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", state.handle)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        state.base_url = f"http://127.0.0.1:{port}"
        runner_box.append(runner)
        ready.set()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield state

    async def shutdown() -> None:
        await runner_box[0].cleanup()
        # Cancel what is left (a hanging handler) so nothing is destroyed while pending.
        leftover = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in leftover:
            task.cancel()
        await asyncio.gather(*leftover, return_exceptions=True)

    future = asyncio.run_coroutine_threadsafe(shutdown(), loop)
    with contextlib.suppress(Exception):
        future.result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)
    if not thread.is_alive():
        loop.close()


@pytest.fixture
def local_settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url, seed=False, webhook_allow_private=True, _env_file=None
    )


@pytest.fixture
def clock() -> MovableClock:
    return MovableClock()


def subscribe(
    db: Database, url: str, *, now: datetime, owner: Identity = OWNER, **fields: Any
) -> tuple[int, str]:
    """Store a subscription (private URLs allowed); returns its id and secret."""
    policy = service.UrlPolicy(resolver=system_resolver, allow_private=True)
    with db.transaction() as session:
        row, secret = service.create_subscription(
            session, owner, SubscriptionIn(url=url, **fields), now=now, urls=policy
        )
        return row.id, secret


def make_event(
    symbol: str = "^RUT",
    event_type: str = "golden_cross",
    session: date = date(2026, 8, 21),
    *,
    rule: str = "sma:50:200",
    live: bool = True,
    now: datetime,
) -> Event:
    return Event(
        id=event_id(symbol, rule, event_type, session),
        type=event_type,
        symbol=symbol,
        session=session,
        rule=rule,
        live=live,
        data=_payload(event_type, symbol, session),
        created_at=now,
    )


def _payload(event_type: str, symbol: str, session: date) -> dict[str, Any]:
    """``data`` shaped as detection writes it (``/v1/events`` serves it typed)."""
    provenance = {"session": session.isoformat(), "source": "import", "instrument": symbol}
    if event_type in ("peak", "trough"):
        turn_rule = {"decline_pct": 20.0, "rebound_pct": 20.0}
        return {
            **provenance,
            **{"extreme_session": session.isoformat(), "extreme_close": 2300.0},
            **{"close": 1840.0, "change_pct": 25.0, "sessions_to_confirm": 30},
            "rule": turn_rule,
        }
    averages = {"close": 2200.5, "fast_value": 2150.0, "slow_value": 2149.0}
    rule = {"fast": 50, "slow": 200, "type": "sma"}
    return {**provenance, **averages, "rule": rule, "sessions_seen": 5000}


def store_and_enqueue(db: Database, events: list[Event], now: datetime) -> int:
    with db.transaction() as session:
        session.add_all(events)
        session.flush()
        return service.enqueue_for_events(session, events, now=now)


def verify(secret: str, received: Received) -> Any:
    """Verify with the reference implementation; returns the parsed body."""
    return Webhook(secret).verify(received.body, received.headers)


def subscription(db: Database, subscription_id: int) -> Subscription:
    with db.transaction(write=False) as session:
        found = session.get(Subscription, subscription_id)
        assert found is not None
        return found

"""Request bodies are capped (413 problem+json, refused before more than the cap is
read), and error log lines stay a few KB whatever the exception carried."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.api.limits import MAX_BODY_BYTES
from app.auth.service import create_key
from app.db.engine import Database
from app.logs import configure
from app.settings import Settings, load_settings
from app.webhooks import router as webhooks_router

CHUNK = 64 * 1024


class FakeServer:
    """The server side of one ASGI request: hands out body chunks, counts the ones
    taken, and keeps what the app sent back."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self.chunks = chunks
        self.taken = 0
        self.sent: list[dict[str, object]] = []

    async def receive(self) -> dict[str, object]:
        chunk = next(self.chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        self.taken += 1
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(self, message: dict[str, object]) -> None:
        self.sent.append(message)

    def status(self) -> object:
        return self.sent[0]["status"]

    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])  # type: ignore[call-overload]

    def body(self) -> object:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))  # type: ignore[misc]


def _post(settings: Settings, server: FakeServer, headers: list[tuple[bytes, bytes]]) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/webhooks",
        "raw_path": b"/v1/webhooks",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    asyncio.run(create_app(settings)(scope, server.receive, server.send))  # type: ignore[arg-type]


def _endless() -> Iterator[bytes]:
    """Four times the cap (finite, so an app without the cap answers, not runs out of memory)."""
    for _ in range(4 * MAX_BODY_BYTES // CHUNK):
        yield b" " * CHUNK


def test_a_declared_body_over_the_cap_is_413_before_any_of_it_is_read(settings: Settings) -> None:
    server = FakeServer(_endless())
    _post(settings, server, [(b"content-length", str(MAX_BODY_BYTES + 1).encode())])
    assert server.status() == 413
    assert server.headers()[b"content-type"] == b"application/problem+json"
    assert server.body()["status"] == 413  # type: ignore[index]
    assert server.taken == 0


def test_a_streamed_body_is_refused_once_past_the_cap(settings: Settings) -> None:
    server = FakeServer(_endless())
    _post(settings, server, [(b"transfer-encoding", b"chunked")])
    assert server.status() == 413
    assert server.headers()[b"content-type"] == b"application/problem+json"
    assert server.taken == MAX_BODY_BYTES // CHUNK + 1


def test_a_declared_length_that_lies_is_still_counted(settings: Settings) -> None:
    server = FakeServer(_endless())
    _post(settings, server, [(b"content-length", b"10")])
    assert server.status() == 413
    assert server.taken == MAX_BODY_BYTES // CHUNK + 1


def test_bodies_up_to_the_cap_reach_the_route(settings: Settings, db: Database) -> None:
    with db.transaction() as session:
        _id, key = create_key(session, "alice")
    app = create_app(settings, db=db)
    app.dependency_overrides[webhooks_router.get_resolver] = lambda: (
        lambda host, port: ["93.184.216.34"]
    )
    payload = json.dumps({"url": "https://hooks.example.com/a"}).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with TestClient(app) as client:
        at_cap = payload + b" " * (MAX_BODY_BYTES - len(payload))
        assert client.post("/v1/webhooks", content=at_cap, headers=headers).status_code == 201
        over = client.post("/v1/webhooks", content=at_cap + b" ", headers=headers)
        assert over.status_code == 413
        assert over.headers["content-type"] == "application/problem+json"
        assert over.json()["status"] == 413


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_an_error_with_megabytes_of_sql_logs_a_few_kb(
    log_format: str, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(load_settings(log_format=log_format, _env_file=None))
    log = logging.getLogger("crosswatch.test")
    statement = "SELECT events.id FROM events WHERE events.symbol IN (" + "?, " * 500_000 + "?)"
    parameters = repr(tuple(f"S{i}" for i in range(500_000)))
    # A secret straddling where the message is cut must not leak in part.
    secret = "whsec_" + "Q" * 5000
    message = f"too many SQL variables {secret}\n[SQL: {statement}]\n[parameters: {parameters}]"
    try:
        raise RuntimeError(message + "\n(Background on this error at: https://sqlalche.me/e/20)")
    except RuntimeError:
        log.exception("unhandled error: %s", message, extra={"detail": parameters})
    output = capsys.readouterr().err
    assert len(output) < 64 * 1024
    assert "too many SQL variables" in output
    assert "sqlalche.me/e/20" in output
    assert "characters cut" in output
    assert "QQQQQQQQ" not in output
    if log_format == "json":
        record = json.loads(output)
        assert len(record["msg"]) < 8 * 1024 and len(record["detail"]) < 8 * 1024
        assert len(record["exc"]) < 32 * 1024

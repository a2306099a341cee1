"""The store breaks under a running server: the SQLite file deleted, overwritten with
garbage bytes, or made read-only. ``/readyz`` turns 503 at the first check after the
break, ``/status`` and ``/v1/status`` show the store down with the reason (never a
500), and once the file is restored everything recovers, reading the restored file
rather than a handle the pool kept on the old one.

The server is real: uvicorn on a free port in a thread, over a real SQLite file.
Read-only is the file's write permission taken away (``chmod a-w``); the store then
counts as read-only even for root, who could still write it (CI runs as root).
On PostgreSQL (when ``CROSSWATCH_TEST_DATABASE_URL`` is set) the store becomes
unreachable: its own database refuses new connections and its open ones are ended.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.api.app import create_app
from app.db.engine import Database
from app.db.migrate import upgrade
from app.settings import load_settings
from tests.conftest import FIXED_NOW, PG_URL
from tests.status.dom import parse
from tests.support.wait import wait_until
from tests.webhooks.conftest import make_event


@contextmanager
def serving_app(app: FastAPI) -> Iterator[httpx.Client]:
    """``app`` under a real uvicorn on a free port, in a thread; a client for it."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), 30, "uvicorn to start")
        assert server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(30)


def _store_event(db: Database, session: date) -> str:
    event = make_event(session=session, now=FIXED_NOW)
    with db.transaction() as unit:
        unit.add(event)
    return event.id


def _checkpoint(db: Database) -> None:
    """Fold the WAL into the main file, so the file alone is the whole store."""
    with db.engine.connect() as connection:
        connection.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))


def _delete(path: Path) -> None:
    path.unlink()


def _overwrite(path: Path) -> None:
    # In place (same inode): the pool's open handles read the garbage too.
    with path.open("r+b") as file:
        file.write(os.urandom(path.stat().st_size))


def _make_read_only(path: Path) -> None:
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


def _restore(path: Path, pristine: Path) -> None:
    if path.exists():
        path.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
    path.write_bytes(pristine.read_bytes())


BREAKS: dict[str, tuple[Callable[[Path], None], str]] = {
    "deleted": (_delete, "missing"),
    "overwritten": (_overwrite, "not a database"),
    "read-only": (_make_read_only, "read-only"),
}


#: Nothing answers 500 while the store is down; only readiness says 503.
EXPECTED_WHEN_DOWN = {
    "/healthz": 200,
    "/metrics": 200,
    "/readyz": 503,
    "/status": 200,
    "/v1/status": 200,
}


def _store_component(report: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in report["components"] if c["name"] == "store")


@pytest.mark.parametrize("break_name", list(BREAKS))
def test_a_broken_store_is_reported_down_and_recovers_when_restored(
    tmp_path: Path, _sqlite_template: Path, break_name: str
) -> None:
    breaks, reason = BREAKS[break_name]
    path = tmp_path / "crosswatch.db"
    shutil.copy(_sqlite_template, path)
    url = f"sqlite:///{path}"
    writer = Database(url)
    before = _store_event(writer, date(2026, 8, 20))
    _checkpoint(writer)
    writer.dispose()
    pristine = tmp_path / "pristine.db"
    shutil.copy(path, pristine)

    settings = load_settings(database_url=url, seed=False, _env_file=None)
    server_db = Database(url)
    try:
        with serving_app(create_app(settings, db=server_db, clock=lambda: FIXED_NOW)) as client:
            assert client.get("/readyz").status_code == 200
            healthy = client.get("/v1/status").json()
            assert _store_component(healthy)["state"] == "operational"
            assert [e["id"] for e in healthy["events"]] == [before]

            breaks(path)

            ready = client.get("/readyz")  # the first check after the break
            assert ready.status_code == 503
            assert ready.headers["content-type"] == "application/problem+json"
            assert reason in ready.json()["detail"]

            report = client.get("/v1/status")
            assert report.status_code == 200
            store = _store_component(report.json())
            assert store["state"] == "down"
            assert reason in store["reason"]
            assert report.json()["overall"]["state"] == "down"

            page = client.get("/status")
            assert page.status_code == 200
            assert page.headers["content-type"].startswith("text/html")
            row = parse(page.text).by_id("component-store")
            assert "down" in row.find_all("span", "state")[0].classes
            assert reason in row.text()

            answers = {route: client.get(route).status_code for route in EXPECTED_WHEN_DOWN}
            assert answers == EXPECTED_WHEN_DOWN
            assert "crosswatch_store_up 0.0" in client.get("/metrics").text

            _restore(path, pristine)
            # Written after the restore by another process: the server must read the
            # restored file, not the one its pool held open before the break.
            other = Database(url)
            after = _store_event(other, date(2026, 8, 21))
            other.dispose()

            wait_until(lambda: client.get("/readyz").status_code == 200, 10, "readiness to recover")
            recovered = client.get("/v1/status").json()
            assert _store_component(recovered)["state"] == "operational"
            assert [e["id"] for e in recovered["events"]] == [after, before]
            assert "crosswatch_store_up 1.0" in client.get("/metrics").text
    finally:
        server_db.dispose()


@pytest.fixture
def own_postgres() -> Iterator[str]:
    """A database of this test's own (connections to it are refused mid-test)."""
    if PG_URL is None:
        pytest.skip("PostgreSQL only: set CROSSWATCH_TEST_DATABASE_URL")
    name = f"cw_store_breaks_{os.getpid()}"
    admin = Database(make_url(PG_URL).set(database="postgres").render_as_string(False))
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(False)
    migrating = Database(url)
    upgrade(migrating.engine)
    migrating.dispose()
    try:
        yield url
    finally:
        with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _accept_connections(url: str, accept: bool) -> None:
    """Open or close the database to new connections, ending the open ones on closing."""
    name = make_url(url).database
    admin = Database(make_url(url).set(database="postgres").render_as_string(False))
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(accept).lower()}'))
        if not accept:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
    admin.dispose()


def test_an_unreachable_postgres_store_is_reported_down_and_recovers(own_postgres: str) -> None:
    settings = load_settings(database_url=own_postgres, seed=False, _env_file=None)
    server_db = Database(own_postgres)
    try:
        with serving_app(create_app(settings, db=server_db, clock=lambda: FIXED_NOW)) as client:
            assert client.get("/readyz").status_code == 200
            _accept_connections(own_postgres, False)

            ready = client.get("/readyz")
            assert ready.status_code == 503
            assert "the store is unreachable" in ready.json()["detail"]
            answers = {route: client.get(route).status_code for route in EXPECTED_WHEN_DOWN}
            assert answers == EXPECTED_WHEN_DOWN
            store = _store_component(client.get("/v1/status").json())
            assert store["state"] == "down"
            assert "not currently accepting connections" in store["reason"]

            _accept_connections(own_postgres, True)
            wait_until(lambda: client.get("/readyz").status_code == 200, 10, "readiness to recover")
            recovered = client.get("/v1/status").json()
            assert _store_component(recovered)["state"] == "operational"
    finally:
        server_db.dispose()

"""Readiness is quiet, and a store that fails after the readiness check still gives a
status page (the store down with the reason), never a 500."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from app.db.engine import Database
from tests.status.conftest import poll_settings
from tests.status.dom import parse


def test_readyz_logs_no_alembic_line(
    db: Database, database_url: str, client_for: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_for(poll_settings(database_url, ["yahoo"]), db)
    with caplog.at_level(logging.DEBUG):
        for _ in range(3):
            assert client.get("/readyz").status_code == 200
        assert client.get("/v1/status").status_code == 200
    alembic = [r.getMessage() for r in caplog.records if r.name.startswith("alembic")]
    assert alembic == []


def test_a_table_lost_after_the_check_shows_the_store_down_not_a_500(
    tmp_path: Path, _sqlite_template: Path, client_for: Any
) -> None:
    # SQLite on purpose: the table is dropped from this test's own file.
    path = tmp_path / "damaged.db"
    shutil.copy(_sqlite_template, path)
    url = f"sqlite:///{path}"
    db = Database(url)
    try:
        client = client_for(poll_settings(url, ["yahoo"]), db)
        assert client.get("/v1/status").json()["overall"]["state"] != "down"
        with sqlite3.connect(path) as damage:
            damage.execute("DROP TABLE poll_runs")
        response = client.get("/v1/status")
        assert response.status_code == 200
        store = response.json()["components"][0]
        assert (store["name"], store["state"]) == ("store", "down")
        assert "no such table: poll_runs" in store["reason"]
        assert "SELECT" not in store["reason"]  # one line, not the statement
        page = client.get("/status")
        assert page.status_code == 200
        assert "no such table" in parse(page.text).by_id("component-store").text()
    finally:
        db.dispose()

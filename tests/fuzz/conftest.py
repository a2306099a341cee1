"""One store for the module's tests: SQLite, or PostgreSQL when the suite runs there,
seeded with the bundled history, with an API key and one subscription of that key."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.auth.service import create_key
from app.db.engine import Database
from app.settings import load_settings
from app.webhooks.router import get_resolver
from tests.conftest import _truncate
from tests.support.stores import seed

# A Monday evening after the bundled history's last session (Friday 2026-08-21).
NOW = datetime(2026, 8, 24, 23, 0, tzinfo=UTC)
SEEDED = ["^RUT", "^GSPC", "^IXIC"]


@dataclass
class Api:
    client: TestClient
    headers: dict[str, str]
    subscription_id: int


@pytest.fixture(scope="module")
def api(
    tmp_path_factory: pytest.TempPathFactory, _sqlite_template: Path, _pg_migrated: str | None
) -> Iterator[Api]:
    if _pg_migrated is None:
        path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
        shutil.copy(_sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        url = _pg_migrated
        _truncate(url)
    db = Database(url)
    seed(db, SEEDED, now=NOW)
    with db.transaction() as session:
        _row, key = create_key(session, "properties", clock=lambda: NOW)
    settings = load_settings(database_url=url, seed=False, _env_file=None)
    app = create_app(settings, db=db, clock=lambda: NOW)
    # A public address for every host: URL checks pass; nothing is sent (no worker runs).
    app.dependency_overrides[get_resolver] = lambda: lambda _host, _port: ["93.184.216.34"]
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(app, raise_server_exceptions=False) as client:
        created = client.post(
            "/v1/webhooks", json={"url": "https://hooks.example.com/p"}, headers=headers
        )
        assert created.status_code == 201, created.text
        yield Api(client, headers, created.json()["id"])
    db.dispose()
    if _pg_migrated is not None:
        _truncate(url)

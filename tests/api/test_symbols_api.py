"""Tracking symbols over the API: keys required, data kept, signals follow."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.auth.service import create_key
from app.db.engine import Database
from app.market import repository
from app.settings import Settings
from tests.conftest import FIXED_NOW, fixed_clock
from tests.support.stores import seed


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    seed(db, ["^RUT"], now=FIXED_NOW)
    with TestClient(create_app(settings, db=db, clock=fixed_clock)) as test_client:
        yield test_client


def _key(db: Database, *, admin: bool) -> dict[str, str]:
    with db.transaction() as session:
        _row, plaintext = create_key(session, "tester", admin)
    return {"Authorization": f"Bearer {plaintext}"}


def test_adding_and_removing_symbols(client: TestClient, db: Database) -> None:
    user, admin = _key(db, admin=False), _key(db, admin=True)
    assert client.post("/v1/symbols", json={"symbol": "iwm"}).status_code == 401
    created = client.post("/v1/symbols", json={"symbol": "iwm"}, headers=user)
    assert created.status_code == 201
    assert created.json()["symbol"] == "IWM"
    again = client.post("/v1/symbols", json={"symbol": "IWM"}, headers=user)
    assert (again.status_code, again.json()["created"]) == (200, False)
    listed = [s["symbol"] for s in client.get("/v1/symbols").json()["symbols"]]
    assert listed == ["IWM", "^RUT"]

    assert [s["symbol"] for s in client.get("/v1/signals").json()["signals"]] == ["^RUT"]
    forbidden = client.delete("/v1/symbols/%5ERUT", headers=user)
    assert forbidden.status_code == 403
    assert client.delete("/v1/symbols/%5ERUT", headers=admin).status_code == 204
    assert client.get("/v1/signals").json()["signals"] == []
    assert client.get("/v1/signals/%5ERUT").status_code == 404
    with db.transaction(write=False) as session:
        assert repository.bar_count(session, "^RUT") == 9811, "stored data is kept"
    missing = client.delete("/v1/symbols/%5ERUT", headers=admin)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert client.post("/v1/symbols", json={"symbol": "^rut"}, headers=user).status_code == 201
    assert client.get("/v1/signals/%5ERUT").json()["close"] == 3017.87


@pytest.mark.parametrize("bad", ["", "has space", "a/b", "x" * 33, "<script>"])
def test_invalid_symbols_are_422(client: TestClient, db: Database, bad: str) -> None:
    response = client.post("/v1/symbols", json={"symbol": bad}, headers=_key(db, admin=False))
    assert response.status_code == 422
    assert response.json()["detail"]

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from app.api.app import create_app
from app.db.engine import Database
from app.settings import Settings, load_settings


def test_healthz_and_readyz_on_a_migrated_store(settings: Settings, db: Database) -> None:
    with TestClient(create_app(settings, db=db)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready"}


def test_readyz_is_503_with_reason_when_migrations_are_missing(tmp_path: Path) -> None:
    settings = load_settings(database_url=f"sqlite:///{tmp_path}/empty.db", _env_file=None)
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 503
    assert "no schema yet" in body["detail"]


def test_readyz_is_503_when_the_store_is_unreachable() -> None:
    settings = load_settings(
        database_url="postgresql+psycopg://nobody@127.0.0.1:1/none", _env_file=None
    )
    with TestClient(create_app(settings)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["detail"].startswith("the store is unreachable")


def test_unknown_route_is_problem_json(settings: Settings, db: Database) -> None:
    with TestClient(create_app(settings, db=db)) as client:
        response = client.get("/v1/nothing-here")
        docs = client.get("/openapi.json")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Not Found"
    assert docs.status_code == 200
    assert "/readyz" in docs.json()["paths"]

"""API keys: stored hashed, shown once, bearer auth, ADMIN_TOKEN bootstrap, 401s."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.api.app import create_app
from app.auth.deps import AdminKey, RequireKey
from app.auth.models import ApiKey
from app.auth.service import authenticate, create_key, hash_key, keys_create
from app.db.engine import Database
from app.settings import Settings, load_settings


@pytest.fixture
def app_settings(database_url: str) -> Settings:
    return load_settings(
        database_url=database_url, seed=False, admin_token="boot-token-123", _env_file=None
    )


@pytest.fixture
def client(app_settings: Settings, db: Database) -> Iterator[TestClient]:
    app: FastAPI = create_app(app_settings, db=db)

    @app.get("/_whoami")
    def whoami(identity: RequireKey) -> dict[str, object]:
        return {"name": identity.name, "admin": identity.admin}

    @app.get("/_admin")
    def admin_only(identity: AdminKey) -> dict[str, object]:
        return {"name": identity.name}

    with TestClient(app) as test_client:
        yield test_client


def test_key_is_stored_hashed_and_shown_once(db: Database) -> None:
    with db.transaction() as session:
        _row, plaintext = create_key(session, "alice", admin=False)
    assert plaintext.startswith("cw_") and len(plaintext) > 40
    with db.transaction(write=False) as session:
        stored = session.scalars(select(ApiKey)).one()
        assert stored.key_hash == hash_key(plaintext) != plaintext
        assert plaintext.startswith(stored.prefix)
        assert authenticate(session, plaintext, admin_token=None) is not None
        assert authenticate(session, plaintext + "x", admin_token=None) is None


def test_keys_create_cli_hook_returns_a_working_key(settings: Settings, db: Database) -> None:
    plaintext = keys_create(settings, "ops", admin=True)
    with db.transaction(write=False) as session:
        identity = authenticate(session, plaintext, admin_token=None)
    assert identity is not None and identity.admin and identity.name == "ops"


def test_missing_or_wrong_key_is_401_problem(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer cw_nope"}, {"Authorization": "Basic x"}):
        response = client.get("/_whoami", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 401


def test_bearer_key_and_admin_token(client: TestClient, db: Database) -> None:
    with db.transaction() as session:
        _row, plaintext = create_key(session, "bob", admin=False)
    bob = {"Authorization": f"Bearer {plaintext}"}
    boot = {"Authorization": "Bearer boot-token-123"}
    assert client.get("/_whoami", headers=bob).json() == {"name": "bob", "admin": False}
    assert client.get("/_whoami", headers=boot).json()["admin"] is True
    assert client.get("/_admin", headers=bob).status_code == 403
    assert client.get("/_admin", headers=boot).status_code == 200


def test_revoked_key_is_refused(client: TestClient, db: Database) -> None:
    with db.transaction() as session:
        row, plaintext = create_key(session, "carol")
        row.revoked_at = row.created_at
    response = client.get("/_whoami", headers={"Authorization": f"Bearer {plaintext}"})
    assert response.status_code == 401

"""``/v1/universes`` through the real app: public reads, admin writes, problems, members
tracked (and seen by the signal routes), and the schemas in the OpenAPI description."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.auth.service import create_key
from app.db.engine import Database
from app.market import repository
from app.market.universes import MAX_MEMBERS
from app.settings import Settings
from tests.conftest import FIXED_NOW, fixed_clock
from tests.support.stores import seed

PROBLEM = "application/problem+json"


@pytest.fixture
def client(settings: Settings, db: Database) -> Iterator[TestClient]:
    seed(db, ["^RUT"], now=FIXED_NOW)
    with TestClient(create_app(settings, db=db, clock=fixed_clock)) as test_client:
        yield test_client


def _key(db: Database, *, admin: bool) -> dict[str, str]:
    with db.transaction() as session:
        _row, plaintext = create_key(session, "tester", admin)
    return {"Authorization": f"Bearer {plaintext}"}


def _tracked(client: TestClient) -> list[str]:
    return [s["symbol"] for s in client.get("/v1/symbols").json()["symbols"]]


def test_an_admin_creates_replaces_reads_and_deletes_a_universe(
    client: TestClient, db: Database
) -> None:
    admin = _key(db, admin=True)
    assert client.get("/v1/universes").json() == {"universes": []}
    created = client.put(
        "/v1/universes/Small-Caps",
        json={"symbols": ["crdo", "IONQ", "^rut", "CRDO"]},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    stamp = FIXED_NOW.isoformat().replace("+00:00", "Z")
    assert created.json() == {
        "name": "small-caps",
        "members": 3,
        "symbols": ["CRDO", "IONQ", "^RUT"],
        "created": True,
        "newly_tracked": ["CRDO", "IONQ"],
        "created_at": stamp,
        "updated_at": stamp,
    }
    assert _tracked(client) == ["CRDO", "IONQ", "^RUT"], "new members are tracked"

    replaced = client.put(
        "/v1/universes/small-caps", json={"symbols": ["IONQ", "AAPL"]}, headers=admin
    )
    assert replaced.status_code == 200
    assert (replaced.json()["created"], replaced.json()["newly_tracked"]) == (False, ["AAPL"])
    read = client.get("/v1/universes/SMALL-CAPS")
    assert read.status_code == 200
    assert (read.json()["members"], read.json()["symbols"]) == (2, ["AAPL", "IONQ"])
    listed = client.get("/v1/universes").json()["universes"]
    assert [(u["name"], u["members"]) for u in listed] == [("small-caps", 2)]

    emptied = client.put("/v1/universes/empty", json={"symbols": []}, headers=admin)
    assert (emptied.status_code, emptied.json()["members"]) == (201, 0)

    assert client.delete("/v1/universes/small-caps", headers=admin).status_code == 204
    assert [u["name"] for u in client.get("/v1/universes").json()["universes"]] == ["empty"]
    assert _tracked(client) == ["AAPL", "CRDO", "IONQ", "^RUT"], "deleting keeps them tracked"
    with db.transaction(write=False) as session:
        assert repository.bar_count(session, "^RUT") == 9811, "stored data is kept"


def test_writes_need_an_admin_key_and_reads_do_not(client: TestClient, db: Database) -> None:
    user, admin = _key(db, admin=False), _key(db, admin=True)
    body = {"symbols": ["IWM"]}
    for headers, status in [({}, 401), (user, 403)]:
        put = client.put("/v1/universes/mine", json=body, headers=headers)
        assert put.status_code == status
        assert put.headers["content-type"] == PROBLEM
    assert client.get("/v1/universes").json() == {"universes": []}, "a refused PUT wrote nothing"
    assert _tracked(client) == ["^RUT"]
    assert client.put("/v1/universes/mine", json=body, headers=admin).status_code == 201
    for headers, status in [({}, 401), (user, 403)]:
        assert client.delete("/v1/universes/mine", headers=headers).status_code == status
    assert client.get("/v1/universes/mine").json()["symbols"] == ["IWM"]


def test_unknown_universes_and_bad_input_are_problems(client: TestClient, db: Database) -> None:
    admin = _key(db, admin=True)
    for response in (
        client.get("/v1/universes/nope"),
        client.delete("/v1/universes/nope", headers=admin),
    ):
        assert response.status_code == 404
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["detail"] == "unknown universe 'nope'"
    refusals = [
        client.get("/v1/universes/has%20space"),
        client.put("/v1/universes/-leading", json={"symbols": ["IWM"]}, headers=admin),
        client.put("/v1/universes/" + "x" * 65, json={"symbols": ["IWM"]}, headers=admin),
        client.put("/v1/universes/mine", json={"symbols": ["IWM", "NOT A TICKER"]}, headers=admin),
        client.put("/v1/universes/mine", json={"symbols": "IWM"}, headers=admin),
        client.put("/v1/universes/mine", json={"symbols": ["IWM"], "x": 1}, headers=admin),
        client.put("/v1/universes/mine", json={}, headers=admin),
        client.put(
            "/v1/universes/mine",
            json={"symbols": [f"S{i}" for i in range(MAX_MEMBERS + 1)]},
            headers=admin,
        ),
    ]
    for response in refusals:
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["detail"]
    assert client.get("/v1/universes").json() == {"universes": []}
    assert _tracked(client) == ["^RUT"], "a refused list tracks nothing"


def test_a_put_retracks_a_stopped_symbol_and_the_signal_routes_see_it(
    client: TestClient, db: Database
) -> None:
    admin = _key(db, admin=True)
    assert [s["symbol"] for s in client.get("/v1/signals").json()["signals"]] == ["^RUT"]
    assert client.delete("/v1/symbols/%5ERUT", headers=admin).status_code == 204
    assert client.get("/v1/signals").json()["signals"] == []
    put = client.put("/v1/universes/indices", json={"symbols": ["^RUT"]}, headers=admin)
    assert put.json()["newly_tracked"] == ["^RUT"]
    assert [s["symbol"] for s in client.get("/v1/signals").json()["signals"]] == ["^RUT"]
    assert client.get("/v1/signals/%5ERUT").json()["close"] == 3017.87


def test_the_openapi_description_has_the_typed_universe_schemas(client: TestClient) -> None:
    description = client.get("/openapi.json").json()
    schemas = description["components"]["schemas"]
    assert schemas["UniverseIn"]["properties"]["symbols"]["maxItems"] == MAX_MEMBERS
    assert schemas["UniverseIn"]["additionalProperties"] is False
    assert set(schemas["UniverseReplaced"]["properties"]) == {
        "name",
        "members",
        "symbols",
        "created_at",
        "updated_at",
        "created",
        "newly_tracked",
    }
    assert schemas["UniverseList"]["properties"]["universes"]["items"] == {
        "$ref": "#/components/schemas/UniverseSummary"
    }
    put = description["paths"]["/v1/universes/{name}"]["put"]
    assert put["security"] == [{"ApiKey": []}]
    assert {"200", "201", "401", "403", "422"} <= set(put["responses"])
    assert "security" not in description["paths"]["/v1/universes"]["get"]
    subscription = schemas["SubscriptionIn"]["properties"]["universe"]
    assert [(v["type"], v.get("maxLength")) for v in subscription["anyOf"]] == [
        ("string", 64),
        ("null", None),
    ]
    assert "universe" in schemas["SubscriptionOut"]["required"]

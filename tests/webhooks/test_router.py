"""``/v1/webhooks`` through the real app: auth isolation, secrets shown once, SSRF,
validation as problem+json, and the delivery log, retry, test, replay and snapshot."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date

import pytest
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.auth.service import create_key
from app.db.engine import Database
from app.settings import Settings
from app.webhooks import router as webhooks_router
from app.webhooks.worker import DeliveryWorker
from tests.webhooks.conftest import MovableClock, Receiver, make_event, verify


def _client(settings: Settings, db: Database, clock: MovableClock) -> TestClient:
    app = create_app(settings, db=db, clock=clock)
    app.include_router(webhooks_router.router)
    app.dependency_overrides[webhooks_router.get_resolver] = lambda: (
        lambda host, port: ["10.0.0.1"] if host.endswith(".internal") else ["93.184.216.34"]
    )
    return TestClient(app)


@pytest.fixture
def keys(db: Database) -> tuple[dict[str, str], dict[str, str]]:
    with db.transaction() as session:
        _a, alice = create_key(session, "alice")
        _b, bob = create_key(session, "bob")
    return {"Authorization": f"Bearer {alice}"}, {"Authorization": f"Bearer {bob}"}


@pytest.fixture
def public_client(settings: Settings, db: Database, clock: MovableClock) -> Iterator[TestClient]:
    with _client(settings, db, clock) as client:
        yield client


@pytest.fixture
def local_client(
    local_settings: Settings, db: Database, clock: MovableClock
) -> Iterator[TestClient]:
    with _client(local_settings, db, clock) as client:
        yield client


def test_every_route_needs_a_key(public_client: TestClient) -> None:
    for method, path in [
        ("GET", "/v1/webhooks"),
        ("POST", "/v1/webhooks"),
        ("GET", "/v1/webhooks/1"),
        ("DELETE", "/v1/webhooks/1"),
        ("POST", "/v1/webhooks/1/test"),
        ("GET", "/v1/webhooks/1/deliveries"),
    ]:
        response = public_client.request(method, path)
        assert response.status_code == 401, (method, path)
        assert response.headers["content-type"] == "application/problem+json"


def test_secret_shown_once_and_keys_are_isolated(
    public_client: TestClient, keys: tuple[dict[str, str], dict[str, str]]
) -> None:
    alice, bob = keys
    created = public_client.post(
        "/v1/webhooks",
        json={"url": "https://hooks.example.com/a", "event_types": ["golden_cross"]},
        headers=alice,
    )
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_")
    hook = body["id"]
    read = public_client.get(f"/v1/webhooks/{hook}", headers=alice).json()
    assert "secret" not in read and read["event_types"] == ["golden_cross"]
    assert (
        "secret" not in public_client.get("/v1/webhooks", headers=alice).json()["subscriptions"][0]
    )
    assert public_client.get("/v1/webhooks", headers=bob).json() == {"subscriptions": []}
    for method, path in [
        ("GET", f"/v1/webhooks/{hook}"),
        ("PATCH", f"/v1/webhooks/{hook}"),
        ("DELETE", f"/v1/webhooks/{hook}"),
        ("POST", f"/v1/webhooks/{hook}/rotate-secret"),
        ("POST", f"/v1/webhooks/{hook}/test"),
    ]:
        kwargs = {"json": {}} if method == "PATCH" else {}
        assert public_client.request(method, path, headers=bob, **kwargs).status_code == 404

    rotated = public_client.post(f"/v1/webhooks/{hook}/rotate-secret", headers=alice).json()
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != body["secret"]
    patched = public_client.patch(
        f"/v1/webhooks/{hook}",
        json={"symbols": ["^gspc"], "rule": {"fast": 20, "slow": 50, "type": "ema"}},
        headers=alice,
    ).json()
    assert patched["symbols"] == ["^GSPC"]
    assert patched["rule"] == {"fast": 20, "slow": 50, "type": "ema"}
    assert public_client.delete(f"/v1/webhooks/{hook}", headers=alice).status_code == 204
    assert public_client.get(f"/v1/webhooks/{hook}", headers=alice).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/",
        "http://10.1.2.3/",
        "http://hooks.internal/x",
        "ftp://example.com/x",
    ],
)
def test_private_and_non_http_urls_are_refused(
    public_client: TestClient, keys: tuple[dict[str, str], dict[str, str]], url: str
) -> None:
    response = public_client.post("/v1/webhooks", json={"url": url}, headers=keys[0])
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_bad_input_is_422(
    public_client: TestClient, keys: tuple[dict[str, str], dict[str, str]]
) -> None:
    url = "https://hooks.example.com/a"
    for body in (
        {"url": url, "event_types": ["golden"]},
        {"url": url, "rule": {"fast": 200, "slow": 50}},
        {"url": url, "rule": {"fast": 1, "slow": 50}},
    ):
        response = public_client.post("/v1/webhooks", json=body, headers=keys[0])
        assert response.status_code == 422, body


def test_test_replay_snapshot_retry_and_the_delivery_log(
    local_client: TestClient,
    db: Database,
    local_settings: Settings,
    clock: MovableClock,
    receiver: Receiver,
    keys: tuple[dict[str, str], dict[str, str]],
) -> None:
    alice = keys[0]
    with db.transaction() as session:
        session.add_all(
            [
                make_event("^RUT", "death_cross", date(2026, 3, 2), live=False, now=clock()),
                make_event("^RUT", "golden_cross", date(2026, 7, 1), live=False, now=clock()),
                make_event("^GSPC", "golden_cross", date(2026, 7, 2), live=False, now=clock()),
            ]
        )
    created = local_client.post(
        "/v1/webhooks", json={"url": receiver.url("/r"), "symbols": ["^RUT"]}, headers=alice
    ).json()
    hook, secret = created["id"], created["secret"]

    test_event = local_client.post(f"/v1/webhooks/{hook}/test", headers=alice).json()
    replayed = local_client.post(
        f"/v1/webhooks/{hook}/replay", json={"since": "2026-06-01"}, headers=alice
    ).json()
    assert replayed == {"deliveries": 1, "event_id": None}
    snap = local_client.post(f"/v1/webhooks/{hook}/snapshot", headers=alice).json()

    async def deliver() -> int:
        async with DeliveryWorker(db, local_settings, clock=clock) as worker:
            return await worker.run_once()

    assert asyncio.run(deliver()) == 3
    bodies = {verify(secret, r)["type"]: verify(secret, r) for r in receiver.at("/r")}
    assert bodies["test"]["data"]["id"] == test_event["event_id"]
    assert bodies["golden_cross"]["data"]["session"] == "2026-07-01"
    assert bodies["snapshot"]["data"]["id"] == snap["event_id"]
    assert bodies["snapshot"]["data"]["data"]["regimes"] == [
        {
            "symbol": "^RUT",
            "regime": "golden",
            "since_session": "2026-07-01",
            "cross_event_id": bodies["golden_cross"]["data"]["id"],
        }
    ]

    log = local_client.get(f"/v1/webhooks/{hook}/deliveries", headers=alice).json()
    assert len(log["deliveries"]) == 3
    assert all(d["status"] == "succeeded" for d in log["deliveries"])
    assert all(d["attempts"][0]["status_code"] == 200 for d in log["deliveries"])
    pending = local_client.get(
        f"/v1/webhooks/{hook}/deliveries?status=pending", headers=alice
    ).json()
    assert pending == {"deliveries": []}

    golden = next(d for d in log["deliveries"] if d["event_type"] == "golden_cross")
    retried = local_client.post(
        f"/v1/webhooks/{hook}/deliveries/{golden['id']}/retry", headers=alice
    )
    assert retried.status_code == 202
    again = local_client.post(
        f"/v1/webhooks/{hook}/replay",
        json={"since": "2026-01-01", "until": "2026-12-31"},
        headers=alice,
    ).json()
    assert again["deliveries"] == 2  # the golden (reset, same row) and the death cross
    assert asyncio.run(deliver()) == 2
    ids = [r.headers["webhook-id"] for r in receiver.at("/r")]
    assert ids.count(bodies["golden_cross"]["data"]["id"]) == 2  # same id on re-delivery
    assert (
        local_client.post(f"/v1/webhooks/{hook}/deliveries/999999/retry", headers=alice).status_code
        == 404
    )

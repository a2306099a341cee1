"""The SSRF guard's gaps (issue 12, item 10): IPv6 addresses that carry a refused IPv4
address (6to4, Teredo, NAT64, IPv4-mapped), numeric hosts in legacy IPv4 forms, and no
DNS lookup while the write transaction holds the store's write lock.

Pure tests of the classifier first, then registration through the API, then delivery."""

from __future__ import annotations

import asyncio
import ipaddress
import sqlite3
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text

from app.api.app import create_app
from app.auth.service import create_key
from app.db.engine import Database
from app.settings import Settings
from app.webhooks import router as webhooks_router
from app.webhooks import ssrf
from app.webhooks.models import DeliveryAttempt, Subscription
from app.webhooks.worker import DeliveryWorker
from tests.webhooks.conftest import (
    MovableClock,
    Receiver,
    make_event,
    store_and_enqueue,
    subscribe,
    subscription,
)

PUBLIC = "93.184.216.34"


def _public(host: str, port: int) -> list[str]:
    return [PUBLIC]


# --- IPv4 inside IPv6 ------------------------------------------------------------------


def six_to_four(v4: ipaddress.IPv4Address, rest: int = 0) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address((0x2002 << 112) | (int(v4) << 80) | rest)


def nat64(v4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address(int(ssrf.NAT64_PREFIX.network_address) | int(v4))


def teredo(server: ipaddress.IPv4Address, client: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    # RFC 4380: 2001:0000:<server>:<flags>:<port ^ 0xffff>:<client ^ 0xffffffff>
    obfuscated_client = int(client) ^ 0xFFFFFFFF
    return ipaddress.IPv6Address(
        (0x20010000 << 96)
        | (int(server) << 64)
        | (0x8000 << 48)
        | (0xFFFF << 32)
        | obfuscated_client
    )


def mapped(v4: ipaddress.IPv4Address) -> ipaddress.IPv6Address:
    return ipaddress.IPv6Address((0xFFFF << 32) | int(v4))


V4 = ipaddress.IPv4Address
WRAPPED = [
    ("2002:a9fe:a9fe::", "169.254.169.254", "6to4", "cloud metadata"),
    ("2002:a00:1::1", "10.0.0.1", "6to4", "private"),
    ("2002:7f00:1:1::", "127.0.0.1", "6to4", "loopback"),
    (str(six_to_four(V4("100.64.0.1"))), "100.64.0.1", "6to4", ""),
    ("64:ff9b::a9fe:a9fe", "169.254.169.254", "NAT64", "cloud metadata"),
    ("64:ff9b::10.1.2.3", "10.1.2.3", "NAT64", "private"),
    ("64:ff9b::127.0.0.1", "127.0.0.1", "NAT64", "loopback"),
    (str(teredo(V4("65.54.227.120"), V4("10.0.0.7"))), "10.0.0.7", "Teredo client", "private"),
    (str(teredo(V4("169.254.169.254"), V4("8.8.8.8"))), "169.254.169.254", "Teredo server", ""),
    ("::ffff:169.254.169.254", "169.254.169.254", "IPv4-mapped", "cloud metadata"),
]


@pytest.mark.parametrize(("address", "inner", "mechanism", "kind"), WRAPPED)
def test_ipv6_carrying_a_refused_ipv4_is_refused_and_says_so(
    address: str, inner: str, mechanism: str, kind: str
) -> None:
    reason = ssrf.blocked_reason(ipaddress.ip_address(address))
    assert reason is not None
    assert f"{inner} carried by {mechanism}" in reason
    assert kind in reason


@pytest.mark.parametrize(("address", "inner", "mechanism", "kind"), WRAPPED)
def test_literal_wrapped_address_is_refused_by_check_url(
    address: str, inner: str, mechanism: str, kind: str
) -> None:
    with pytest.raises(ssrf.UnsafeUrl, match=f"{inner} carried by {mechanism}"):
        ssrf.check_url(f"http://[{address}]:8080/hook", resolver=_public, allow_private=False)


def test_hostname_resolving_to_a_wrapped_private_address_is_refused() -> None:
    def resolver(host: str, port: int) -> list[str]:
        return [PUBLIC, "2002:a9fe:a9fe::1"]

    with pytest.raises(ssrf.UnsafeUrl, match=r"169\.254\.169\.254 carried by 6to4"):
        ssrf.check_url("https://hooks.example.com/x", resolver=resolver, allow_private=False)


def test_wrapping_a_public_ipv4_is_judged_as_before() -> None:
    """Unwrapping only adds refusals: a 6to4 address of a public IPv4 stays allowed, and
    Teredo (not globally routable) stays refused whatever it carries."""
    assert ssrf.blocked_reason(six_to_four(V4(PUBLIC))) is None
    assert ssrf.blocked_reason(mapped(V4(PUBLIC))) is None
    assert ssrf.blocked_reason(teredo(V4("8.8.8.8"), V4(PUBLIC))) is not None


@given(
    st.ip_addresses(v=4).filter(lambda a: ssrf.blocked_reason(a) is not None),
    st.integers(0, 2**80 - 1),
)
def test_every_wrapping_of_a_refused_ipv4_is_refused(v4: V4, rest: int) -> None:
    for wrapped in (
        six_to_four(v4, rest),
        nat64(v4),
        mapped(v4),
        teredo(V4(PUBLIC), v4),
        teredo(v4, V4(PUBLIC)),
    ):
        reason = ssrf.blocked_reason(wrapped)
        assert reason is not None and f"{v4} carried by" in reason, wrapped


# --- numeric hosts ---------------------------------------------------------------------

NUMERIC_HOSTS = [
    "2130706433",  # 127.0.0.1 as one 32-bit number
    "017700000001",  # the same in octal
    "0x7f000001",  # in hex
    "127.1",  # short form
    "0",  # 0.0.0.0
    "0x7f.1",
    "0177.0.0.1",
    "127.0.0.01",
    "93.184.216.34.",  # trailing dot
    "1.2.3.4.5",
]


@pytest.mark.parametrize("host", NUMERIC_HOSTS)
@pytest.mark.parametrize("allow_private", [False, True])
def test_non_canonical_numeric_hosts_are_refused(host: str, allow_private: bool) -> None:
    with pytest.raises(ssrf.UnsafeUrl, match="not a dotted-quad IPv4 address"):
        ssrf.check_url(f"http://{host}:8080/x", resolver=_public, allow_private=allow_private)


@pytest.mark.parametrize(
    "url",
    [
        f"http://{PUBLIC}/x",
        "https://123.example.com/x",
        "https://0x7f.example/x",
        "https://hooks.example.com./x",
        "https://hooks.2130706433.example/x",
    ],
)
def test_canonical_addresses_and_hostnames_with_numbers_pass(url: str) -> None:
    ssrf.check_url(url, resolver=_public, allow_private=False)


def test_host_is_judged_as_the_http_client_will_send_it() -> None:
    """Full-width digits are IDNA-mapped to ASCII by the delivering client, so they are
    checked as the loopback address they become, not handed to the resolver."""
    with pytest.raises(ssrf.UnsafeUrl, match="loopback"):
        ssrf.check_url("http://１２７.０.０.１/x", resolver=_public, allow_private=False)


# --- registration through the API --------------------------------------------------------


@pytest.fixture
def client(settings: Settings, db: Database, clock: MovableClock) -> Iterator[TestClient]:
    app = create_app(settings, db=db, clock=clock)
    app.include_router(webhooks_router.router)
    app.dependency_overrides[webhooks_router.get_resolver] = lambda: _public
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def alice(db: Database) -> dict[str, str]:
    with db.transaction() as session:
        _id, key = create_key(session, "alice")
    return {"Authorization": f"Bearer {key}"}


REFUSED_URLS = [
    ("http://[2002:a9fe:a9fe::]/", "169.254.169.254 carried by 6to4"),
    ("http://[64:ff9b::a00:1]/", "10.0.0.1 carried by NAT64"),
    ("http://2130706433/", "not a dotted-quad"),
    ("http://017700000001/", "not a dotted-quad"),
    ("http://127.1/", "not a dotted-quad"),
    ("http://0/", "not a dotted-quad"),
]


@pytest.mark.parametrize(("url", "why"), REFUSED_URLS)
def test_registration_refuses_with_problem_json(
    client: TestClient, alice: dict[str, str], url: str, why: str
) -> None:
    response = client.post("/v1/webhooks", json={"url": url}, headers=alice)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert why in response.json()["detail"]
    assert client.get("/v1/webhooks", headers=alice).json() == {"subscriptions": []}


@pytest.mark.parametrize(("url", "why"), REFUSED_URLS)
def test_patch_refuses_and_keeps_the_old_url(
    client: TestClient, alice: dict[str, str], url: str, why: str
) -> None:
    created = client.post(
        "/v1/webhooks", json={"url": "https://hooks.example.com/a"}, headers=alice
    )
    hook = created.json()["id"]
    response = client.patch(f"/v1/webhooks/{hook}", json={"url": url}, headers=alice)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert why in response.json()["detail"]
    assert client.get(f"/v1/webhooks/{hook}", headers=alice).json()["url"] == (
        "https://hooks.example.com/a"
    )


def _open_transactions(db: Database) -> list[str]:
    """What shows another connection is mid-transaction: on SQLite, the write lock is
    taken (probed from a fresh connection that does not wait); on PostgreSQL, another
    session of this database is idle in a transaction."""
    if db.is_sqlite:
        probe = sqlite3.connect(str(db.engine.url.database), timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return []
        except sqlite3.OperationalError as exc:
            return [str(exc)]
        finally:
            probe.close()
    with db.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT state FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
            )
        )
        return [str(row.state) for row in rows]


def test_no_dns_lookup_inside_the_write_transaction(
    settings: Settings, db: Database, clock: MovableClock, alice: dict[str, str]
) -> None:
    seen: list[tuple[str, list[str]]] = []

    def resolver(host: str, port: int) -> list[str]:
        seen.append((host, _open_transactions(db)))
        return [PUBLIC]

    app = create_app(settings, db=db, clock=clock)
    app.include_router(webhooks_router.router)
    app.dependency_overrides[webhooks_router.get_resolver] = lambda: resolver
    with TestClient(app) as client:
        created = client.post("/v1/webhooks", json={"url": "https://a.example.com/"}, headers=alice)
        assert created.status_code == 201
        patched = client.patch(
            f"/v1/webhooks/{created.json()['id']}",
            json={"url": "https://b.example.com/", "description": "moved"},
            headers=alice,
        )
        assert patched.status_code == 200
        assert patched.json()["url"] == "https://b.example.com/"
    assert seen == [("a.example.com", []), ("b.example.com", [])]


# --- delivery ------------------------------------------------------------------------------


def _deliver_once(db: Database, settings: Settings, clock: MovableClock, **kw: object) -> None:
    async def run() -> None:
        worker = DeliveryWorker(db, settings, clock=clock, random=lambda: 0.5, **kw)  # type: ignore[arg-type]
        async with worker:
            await worker.run_once()

    asyncio.run(run())


def _last_attempts(db: Database) -> list[DeliveryAttempt]:
    """The latest attempt of each delivery."""
    latest: dict[int, DeliveryAttempt] = {}
    with db.transaction(write=False) as session:
        for attempt in session.scalars(select(DeliveryAttempt).order_by(DeliveryAttempt.id)):
            latest[attempt.delivery_id] = attempt
    return list(latest.values())


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ("2002:7f00:1::", "127.0.0.1 carried by 6to4"),
        ("64:ff9b::a9fe:a9fe", "169.254.169.254 carried by NAT64"),
        (str(teredo(V4("8.8.8.8"), V4("192.168.0.9"))), "192.168.0.9 carried by Teredo client"),
    ],
)
def test_delivery_refuses_a_host_resolving_to_a_wrapped_private_address(
    db: Database,
    settings: Settings,
    clock: MovableClock,
    receiver: Receiver,
    answer: str,
    why: str,
) -> None:
    subscribe(db, "http://hooks.example.com:8080/hook", now=clock())
    store_and_enqueue(db, [make_event(now=clock())], clock())
    _deliver_once(db, settings, clock, resolver=lambda host, port: [answer])
    (attempt,) = _last_attempts(db)
    assert attempt.error_class == "UnsafeUrl"
    assert why in (attempt.response_excerpt or "")
    assert receiver.received == []


@pytest.mark.parametrize(
    ("stored_url", "why"),
    [
        ("http://[2002:7f00:1::]:9/hook", "127.0.0.1 carried by 6to4"),
        ("http://2130706433:9/hook", "not a dotted-quad"),
        ("http://127.1:9/hook", "not a dotted-quad"),
    ],
)
def test_delivery_refuses_a_stored_url_registration_now_refuses(
    db: Database, settings: Settings, clock: MovableClock, stored_url: str, why: str
) -> None:
    """A row stored before these checks existed is refused when it is due, without a
    lookup and without a connection."""
    hook, _secret = subscribe(db, "http://hooks.example.com/hook", now=clock())
    with db.transaction() as session:
        row = session.get(Subscription, hook)
        assert row is not None
        row.url = stored_url
    store_and_enqueue(db, [make_event(now=clock())], clock())
    lookups: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return [PUBLIC]

    _deliver_once(db, settings, clock, resolver=resolver)
    (attempt,) = _last_attempts(db)
    assert attempt.error_class == "UnsafeUrl"
    assert why in (attempt.response_excerpt or "")
    assert lookups == []
    assert subscription(db, hook).url == stored_url

"""Schemathesis against the app's own OpenAPI description (DESIGN §6: bad input is a
4xx, never a 500), over every operation, with a valid admin API key, on a store seeded
with the bundled history so that reads run the real analysis.

Checks: every built-in check of the installed Schemathesis except
``positive_data_acceptance``. That one expects every schema-valid request to succeed,
but some valid-looking input is refused by design after schema validation, with a 422
that says why (README "HTTP": ``fast >= slow``, a window longer than the stored history,
``end`` before ``start``, a cursor that is not one of ours). What stays on: no 5xx, each
response matches its declared schema, status code, content type and headers,
schema-violating requests are rejected, and a 405 names the methods the path has.

Nothing leaves the process: requests go to the ASGI app in memory, URL checks resolve
through a fake resolver, no delivery worker runs, and a real DNS lookup fails the test.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import BaseSchema, Case, GenerationMode, HookContext
from schemathesis.core.parameters import ParameterLocation
from schemathesis.python.asgi import shutdown_lifespans
from sqlalchemy import select

from app.api.app import create_app
from app.auth.service import Identity, create_key
from app.db.engine import Database
from app.jobs import ingest
from app.settings import Settings
from app.signals.models import Event, event_id
from app.webhooks import service
from app.webhooks.models import Delivery
from app.webhooks.router import get_resolver
from app.webhooks.schemas import SubscriptionIn

# A Monday evening after the bundled history's last session (Friday 2026-08-21).
NOW = datetime(2026, 8, 24, 23, 0, tzinfo=UTC)
SEEDED = ("^RUT", "^GSPC", "^IXIC")
# Stands in for DNS: a public address, so that URL checks pass and subscriptions are
# created. Nothing is ever sent to it (no delivery worker runs in this test).
PUBLIC_ADDRESS = "93.184.216.34"
# Examples per operation and generation phase: the file runs in about a minute on 2 cores.
MAX_EXAMPLES = 25
OWNED_SUBSCRIPTIONS: list[dict[str, Any]] = [
    {},
    {"symbols": ["^RUT"], "event_types": ["golden_cross"]},
    {"rule": {"fast": 20, "slow": 100, "type": "ema"}},
]


def _resolve(_host: str, _port: int) -> list[str]:
    return [PUBLIC_ADDRESS]


def _no_dns(*_args: object, **_kwargs: object) -> Any:
    raise AssertionError("the fuzz run must not resolve hosts")


@pytest.fixture
def fuzz_identity(db: Database) -> tuple[Identity, str]:
    """An admin key: DELETE /v1/symbols/{symbol} needs one (a non-admin key gets 403)."""
    with db.transaction() as session:
        row, plaintext = create_key(session, "fuzzer", admin=True, clock=lambda: NOW)
        return Identity(key_id=row.id, name=row.name, admin=True), plaintext


@pytest.fixture
def fuzz_key(fuzz_identity: tuple[Identity, str]) -> str:
    return fuzz_identity[1]


def _own_subscriptions(db: Database, identity: Identity) -> tuple[list[int], list[int]]:
    """Subscriptions of the fuzz key, one with a delivery, so that id routes find rows."""
    with db.transaction() as session:
        policy = service.UrlPolicy(resolver=_resolve, allow_private=False)
        ids = [
            service.create_subscription(
                session,
                identity,
                SubscriptionIn(url=f"https://hooks.example.com/{n}", **fields),
                now=NOW,
                urls=policy,
            )[0].id
            for n, fields in enumerate(OWNED_SUBSCRIPTIONS)
        ]
        event = Event(
            id=event_id("^RUT", "sma:50:200", "golden_cross", date(2026, 8, 21)),
            type="golden_cross",
            symbol="^RUT",
            session=date(2026, 8, 21),
            rule="sma:50:200",
            live=True,
            data={  # as detection writes it: /v1/events serves it in its typed model
                "session": "2026-08-21",
                "close": 3017.87,
                "fast_value": 2900.0,
                "slow_value": 2899.0,
                "rule": {"fast": 50, "slow": 200, "type": "sma"},
                "sessions_seen": 9000,
                "source": "seed",
                "instrument": "^RUT",
            },
            created_at=NOW,
        )
        stored = session.merge(event)
        session.flush()
        assert service.enqueue_for_events(session, [stored], now=NOW) > 0
        deliveries = list(session.scalars(select(Delivery.id)))
    return ids, deliveries


@pytest.fixture
def api_schema(
    db: Database,
    settings: Settings,
    fuzz_identity: tuple[Identity, str],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[BaseSchema]:
    monkeypatch.setattr(socket, "getaddrinfo", _no_dns)
    ingest.seed(db, list(SEEDED), clock=lambda: NOW)
    subscriptions, deliveries = _own_subscriptions(db, fuzz_identity[0])
    app = create_app(settings, db=db, clock=lambda: NOW)
    app.dependency_overrides[get_resolver] = lambda: _resolve
    loaded = schemathesis.openapi.from_asgi("/openapi.json", app)
    # Unknown query parameters are ignored, as HTTP APIs do: adding one does not make a
    # request invalid, so it is not a way to generate a request that must be refused.
    loaded.config.generation.update(allow_extra_parameters=False)

    @loaded.hook
    def map_case(context: HookContext, case: Case[Any]) -> Case[Any]:
        """Aim half of the valid path parameters at things that exist.

        Generated symbols and ids almost never name a tracked symbol or an owned
        subscription, so without this the routes behind them would only ever answer
        404. The choice depends only on the generated value: runs stay deterministic.
        DELETE keeps what was generated, so the seeded rows stay for the other routes.
        """
        path = case.meta.components.get(ParameterLocation.PATH) if case.meta else None
        if path is None or path.mode is not GenerationMode.POSITIVE or case.method == "DELETE":
            return case
        params = case.path_parameters or {}
        for name, pool in (
            ("symbol", list(SEEDED)),
            ("subscription_id", subscriptions),
            ("delivery_id", deliveries),
        ):
            if name in params and pool:
                pick = sum(map(ord, str(params[name]))) % (2 * len(pool))
                if pick < len(pool):
                    params[name] = pool[pick]
        return case

    yield loaded
    # from_asgi started the app's lifespan; end it before the store goes away.
    shutdown_lifespans()


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_to_its_schema(case: Case[Any], fuzz_key: str) -> None:
    case.call_and_validate(
        headers={"Authorization": f"Bearer {fuzz_key}"},
        excluded_checks=[schemathesis.checks.positive_data_acceptance],
    )

"""A client generated from the served ``/openapi.json`` works against a real server.

``openapi-python-client`` generates a client (once per module) from the description a
real uvicorn server serves (its own thread, 127.0.0.1, a free port) over a store seeded
with the bundled history, a daily brief and a retraction written by the real detection
code. Every read route and every webhook route is called through that client, and each
answer must parse into the generated models: no ``Unset`` where the server always sends
a field, no key left over in ``additional_properties`` (every key the server sent has a
typed field), every event's ``data`` in the payload model of its ``type``.
"""

from __future__ import annotations

import importlib
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import attrs
import httpx
import pytest
import uvicorn
from openapi_spec_validator import validate

from app.api.app import create_app
from app.auth.service import create_key
from app.db.engine import Database
from app.jobs.watch.check import cross_watch_event
from app.jobs.watch.settle import settle_watches
from app.jobs.watch.watchlist import Candidate
from app.market import repository as market
from app.market.providers.yahoo import LiveQuote
from app.settings import load_settings
from app.signals import daily_brief
from app.signals import events as signal_events
from app.signals import service as signal_service
from app.signals.analysis import DEFAULT_RULE
from app.signals.book import SignalBook
from app.signals.models import Event, event_id
from app.signals.repository import insert_new
from app.signals.schemas import EventType
from tests.conftest import _truncate
from tests.support.stores import seed

# A Monday evening after the bundled history's last session (Friday 2026-08-21).
NOW = datetime(2026, 8, 24, 23, 0, tzinfo=UTC)
SEEDED = ["^RUT", "^GSPC", "^IXIC"]
PACKAGE = "crosswatch_client"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"
# The payload model of each event type's ``data``.
PAYLOADS = {
    "golden_cross": "CrossData",
    "death_cross": "CrossData",
    "cross_approaching": "ApproachData",
    "cross_watch": "CrossWatchData",
    "cross_watch_missed": "CrossWatchMissedData",
    "peak": "TurnData",
    "trough": "TurnData",
    "daily_brief": "DailyBriefData",
    "retracted": "RetractedData",
    "snapshot": "SnapshotData",
    "test": "EventTestData",
}
# Fields the server sends only sometimes (the contract says so: not required).
OPTIONAL = {
    ("SchedulerDetails", "last_run"),
    ("SchedulerDetails", "last_status"),
    ("SchedulerDetails", "last_started_at"),
    ("SchedulerDetails", "last_duration_seconds"),
    ("SchedulerDetails", "in_progress"),
    ("DeliveryWorkerDetails", "oldest_due_age_seconds"),
    ("Problem", "errors"),
}


@dataclass
class Served:
    base: str
    key: str
    description: dict[str, Any]


def _store_brief_and_retraction(db: Database) -> None:
    """A ``daily_brief`` as a poll writes it, and a ``retracted`` event from detection
    rechecking a cross the closes do not imply (as after a revision of the closes)."""
    with db.transaction() as session:
        signals = signal_service.all_signals(SignalBook(), session, NOW)
        assert daily_brief.record_daily_brief(
            session,
            signals,
            text=daily_brief.daily_brief_text(session, signals, now=NOW),
            now=NOW,
            live=False,
        )
        last = market.last_sessions(session, ["^RUT"])["^RUT"]
        undone = date(2026, 8, 3)  # no cross of ^RUT on that session
        session.add(
            Event(
                id=event_id("^RUT", DEFAULT_RULE.key, "golden_cross", undone),
                type="golden_cross",
                symbol="^RUT",
                session=undone,
                rule=DEFAULT_RULE.key,
                live=False,
                data={
                    "session": undone.isoformat(),
                    "close": 2000.0,
                    "fast_value": 2000.0,
                    "slow_value": 1999.0,
                    "rule": {"fast": 50, "slow": 200, "type": "sma"},
                    "sessions_seen": 1000,
                    "source": "import",
                    "instrument": "^RUT",
                },
                created_at=NOW,
            )
        )
        session.flush()
        found = signal_events.detect_and_record(
            session, "^RUT", previous_last=last, recheck_from=undone, now=NOW
        )
        assert [event.type for event in found] == ["retracted"]


def _store_watch_and_miss(db: Database) -> None:
    """A ``cross_watch`` as a check writes it, settled by :func:`settle_watches` as a
    ``cross_watch_missed`` (no cross of ^RUT on its session)."""
    day = date(2026, 8, 21)
    candidate = Candidate(
        "^RUT", DEFAULT_RULE, day, date(2026, 8, 20), 2400.0, 2450.0, "golden", 2.08
    )
    at = datetime(2026, 8, 21, 15, 0, tzinfo=ZoneInfo("America/New_York"))
    quote = LiveQuote("^RUT", 2460.0, at, day)
    with db.transaction() as session:
        event = cross_watch_event(candidate, quote, -0.4, NOW)
        assert insert_new(session, [event]) == [event]
        assert [e.type for e in settle_watches(session, now=NOW)] == ["cross_watch_missed"]


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, _sqlite_template: Path, _pg_migrated: str | None
) -> Iterator[Served]:
    if _pg_migrated is None:
        path = tmp_path_factory.mktemp("client") / "client.db"
        shutil.copy(_sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        url = _pg_migrated
        _truncate(url)
    db = Database(url)
    seed(db, SEEDED, now=NOW)
    _store_brief_and_retraction(db)
    _store_watch_and_miss(db)
    with db.transaction() as session:
        _row, key = create_key(session, "generated client", clock=lambda: NOW)
    # Loopback webhook URLs are accepted; nothing is sent (no delivery worker runs).
    settings = load_settings(
        database_url=url, seed=False, webhook_allow_private=True, _env_file=None
    )
    app = create_app(settings, db=db, clock=lambda: NOW)
    sock = _free_socket()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    deadline = time.monotonic() + 30
    while True:  # wait for the server to answer, not for a fixed time
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the server did not start within 30 s"
        time.sleep(0.05)
    try:
        description = httpx.get(f"{base}/openapi.json", timeout=10).json()
        yield Served(base, key, description)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        db.dispose()
        if _pg_migrated is not None:
            _truncate(url)


@pytest.fixture(scope="module")
def client(served: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The package ``openapi-python-client`` generates from the served description."""
    workdir = tmp_path_factory.mktemp("generated")
    (workdir / "openapi.json").write_text(httpx.get(f"{served.base}/openapi.json").text)
    (workdir / "config.yaml").write_text("post_hooks: []\n")  # no formatter run
    result = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            "openapi.json",
            "--meta",
            "none",
            "--config",
            "config.yaml",
            "--output-path",
            PACKAGE,
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Warning" not in output and "Error" not in output, output
    sys.path.insert(0, str(workdir))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(workdir))
        for name in [name for name in sys.modules if name.partition(".")[0] == PACKAGE]:
            del sys.modules[name]


def _module(package: ModuleType, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.{name}")


def _operation(package: ModuleType, tag: str, prefix: str) -> Any:
    """The generated module of the operation whose name starts with ``prefix``."""
    folder = Path(package.__file__ or "").parent / "api" / tag
    (found,) = [path.stem for path in folder.glob(f"{prefix}_*.py")]
    return _module(package, f"api.{tag}.{found}")


def _fully_parsed(value: Any, unset: type, where: str = "answer") -> None:
    """Every field parsed: nothing ``Unset`` the server always sends, no key left over
    in ``additional_properties``."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            _fully_parsed(item, unset, f"{where}[{index}]")
        return
    if not attrs.has(type(value)):
        return
    name = type(value).__name__
    for field in attrs.fields(type(value)):
        item = getattr(value, field.name)
        if field.name == "additional_properties":
            assert item == {}, f"{where} ({name}) has keys no field declares: {sorted(item)}"
            continue
        if (name, field.name) not in OPTIONAL:
            assert not isinstance(item, unset), f"{where}.{field.name} ({name}) is Unset"
        _fully_parsed(item, unset, f"{where}.{field.name}")


def test_the_served_description_passes_the_openapi_validator(served: Served) -> None:
    validate(served.description)  # raises on any violation of the OpenAPI 3.1 schema
    assert served.description["openapi"].startswith("3.1")


def test_the_generated_models_have_no_untyped_maps(client: ModuleType) -> None:
    models = _module(client, "models")
    classes = [getattr(models, name) for name in models.__all__]
    untyped = []
    for cls in classes:
        if not attrs.has(cls):
            continue
        fields = [field.name for field in attrs.fields(cls)]
        if fields == ["additional_properties"]:
            untyped.append(cls.__name__)  # a map with no declared key
        for field, annotation in cls.__annotations__.items():
            if field != "additional_properties" and "dict[str, Any]" in str(annotation):
                untyped.append(f"{cls.__name__}.{field}")
    assert untyped == []
    names = {cls.__name__ for cls in classes}
    assert [name for name in names if "Type0" in name] == []
    assert {"EventType", "Regime", "ForwardReturns", "CrossSummary", "ProblemError"} <= names
    assert {member.value for member in models.EventType} == {member.value for member in EventType}
    signal_annotations = models.Signal.__annotations__
    assert signal_annotations["regime"] == "None | Regime"


def test_every_read_route_parses_into_typed_models(client: ModuleType, served: Served) -> None:
    models = _module(client, "models")
    unset = _module(client, "types").Unset
    api = client.Client(base_url=served.base, raise_on_unexpected_status=True)

    def call(tag: str, name: str, **params: Any) -> Any:
        parsed = _operation(client, tag, name).sync(client=api, **params)
        _fully_parsed(parsed, unset, name)
        return parsed

    signals = call("signals", "list_signals")
    assert isinstance(signals, models.SignalList)
    assert {signal.symbol for signal in signals.signals} == set(SEEDED)
    for signal in signals.signals:
        assert signal.regime in (models.Regime.GOLDEN, models.Regime.DEATH)
        assert isinstance(signal.last_trough.forward_returns, models.ForwardReturns)
    rut = call("signals", "get_signal", symbol="^RUT")
    assert isinstance(rut, models.Signal) and rut.rule.fast == 50
    average = models.GetSignalV1SignalsSymbolGetType("ema")
    ema = call("signals", "get_signal", symbol="^RUT", fast=20, slow=50, type_=average)
    assert isinstance(ema, models.Signal) and ema.rule.type_.value == "ema"
    symbols = call("signals", "list_symbols")
    assert isinstance(symbols, models.SymbolList) and len(symbols.symbols) == 3
    closes = call("signals", "get_closes", symbol="^RUT", start=date(2026, 8, 17))
    assert isinstance(closes, models.BarList)
    assert [bar.session for bar in closes.bars][-1] == date(2026, 8, 21)
    crosses = call("signals", "get_crosses", symbol="^GSPC")
    assert isinstance(crosses, models.CrossList)
    assert isinstance(crosses.summary.golden_cross.forward_returns.field_21, models.HorizonStats)
    assert crosses.summary.count == len(crosses.crosses) > 0
    assert isinstance(crosses.crosses[0].forward_returns.field_252, float)
    turns = call("signals", "get_turns", symbol="^IXIC")
    assert isinstance(turns, models.TurnList) and turns.rule.decline_pct == 20
    comparison = call("signals", "compare", start="2026-01-02")
    assert isinstance(comparison, models.Comparison) and len(comparison.returns) == 3
    for kind in ("golden_cross", "death_cross", "peak", "trough", "cross_approaching"):
        scan = call("signals", "scan", event=models.ScanV1ScanGetEvent(kind), within=10000)
        assert isinstance(scan, models.ScanResult) and scan.matches, kind
        facts = {"peak": "TurnFacts", "trough": "TurnFacts", "cross_approaching": "ApproachFacts"}
        expected = getattr(models, facts.get(kind, "CrossFacts"))
        assert all(type(match.data) is expected for match in scan.matches), kind
    seen = set()
    for kind in models.EventType:
        if kind.value in ("test", "snapshot"):
            continue  # made by the webhook routes (see the webhook test)
        page = call("signals", "list_events", type_=kind, limit=1000)
        assert isinstance(page, models.EventPage) and page.events, kind
        for event in page.events:
            assert event.type_ is kind
            assert type(event.data).__name__ == PAYLOADS[kind.value], (kind, event.data)
        seen.add(kind.value)
    assert seen == set(PAYLOADS) - {"test", "snapshot"}
    status = call("health", "status_json")
    assert isinstance(status, models.StatusReport)
    kinds = {component.kind.value: type(component.details) for component in status.components}
    assert kinds["store"] is models.NoDetails
    assert kinds["scheduler"] is models.SchedulerDetails
    assert isinstance(call("health", "healthz"), models.Health)
    assert call("health", "readyz").status == "ready"
    metrics = call("health", "prometheus")
    assert isinstance(metrics, str) and "crosswatch_store_up 1.0" in metrics


def test_wire_keys_stay_as_designed(served: Served) -> None:
    """The typed models changed no key: forward returns keep their horizons as keys,
    on the rendered-once ``/v1/signals`` bodies too, and CSV is still served."""
    crosses = httpx.get(f"{served.base}/v1/symbols/%5EGSPC/crosses").json()
    horizons = {"21", "63", "126", "252"}
    assert set(crosses["crosses"][0]["forward_returns"]) == horizons
    assert set(crosses["summary"]["golden_cross"]["forward_returns"]) == horizons
    assert set(crosses["summary"]) == {
        "count",
        "golden_cross",
        "death_cross",
        "whipsaws",
        "whipsaw_sessions",
    }
    for body in (
        httpx.get(f"{served.base}/v1/signals").json()["signals"][0],
        httpx.get(f"{served.base}/v1/signals/%5ERUT").json(),
    ):
        assert set(body["last_trough"]["forward_returns"]) == horizons
        assert set(body["last_trough"]["forward_returns_from_confirmation"]) == horizons
    status = httpx.get(f"{served.base}/v1/status").json()
    details = {component["kind"]: component["details"] for component in status["components"]}
    assert details["store"] == {}
    assert set(details["scheduler"]) == {"next_poll_at"}  # no poll ran: nothing else
    csv = httpx.get(
        f"{served.base}/v1/symbols/%5ERUT/closes",
        params={"start": "2026-08-20"},
        headers={"Accept": "text/csv"},
    )
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0].startswith("date,close")


def test_every_webhook_route_through_the_generated_client(
    client: ModuleType, served: Served
) -> None:
    models = _module(client, "models")
    unset = _module(client, "types").Unset
    api = client.AuthenticatedClient(
        base_url=served.base, token=served.key, raise_on_unexpected_status=True
    )

    def call(name: str, **params: Any) -> Any:
        parsed = _operation(client, "webhooks", name).sync(client=api, **params)
        _fully_parsed(parsed, unset, name)
        return parsed

    body = models.SubscriptionIn.from_dict(
        {"url": "http://127.0.0.1:9/hook", "event_types": ["golden_cross", "death_cross"]}
    )
    created = call("create", body=body)
    assert isinstance(created, models.SubscriptionCreated)
    assert created.secret.startswith("whsec_")
    assert created.event_types == [models.EventType.GOLDEN_CROSS, models.EventType.DEATH_CROSS]
    hook = created.id
    listed = call("list")
    assert isinstance(listed, models.SubscriptionList)
    assert [subscription.id for subscription in listed.subscriptions] == [hook]
    read = call("read", subscription_id=hook)
    assert isinstance(read, models.SubscriptionOut) and read.rule is None
    patch = models.SubscriptionPatch.from_dict({"description": "typed", "symbols": ["^RUT"]})
    patched = call("update", subscription_id=hook, body=patch)
    assert isinstance(patched, models.SubscriptionOut) and patched.description == "typed"
    test = call("test", subscription_id=hook)
    assert isinstance(test, models.Enqueued) and test.deliveries == 1
    snapshot = call("snapshot", subscription_id=hook)
    assert isinstance(snapshot, models.Enqueued) and snapshot.deliveries == 1
    replay = call("replay", subscription_id=hook, body=models.ReplayIn(since=date(2020, 1, 1)))
    assert isinstance(replay, models.Enqueued) and replay.deliveries > 0
    deliveries = call("deliveries", subscription_id=hook, limit=1000)
    assert isinstance(deliveries, models.DeliveryList)
    kinds = {delivery.event_type for delivery in deliveries.deliveries}
    assert {models.EventType.TEST, models.EventType.SNAPSHOT} <= kinds
    assert {delivery.status for delivery in deliveries.deliveries} == {
        models.DeliveryStatus.PENDING
    }
    pending = call("deliveries", subscription_id=hook, status=models.DeliveryStatus.PENDING)
    assert len(pending.deliveries) == min(100, len(deliveries.deliveries))
    for kind, event_id_ in (("test", test.event_id), ("snapshot", snapshot.event_id)):
        events = _operation(client, "signals", "list_events").sync(
            client=api, type_=models.EventType(kind)
        )
        _fully_parsed(events, unset, kind)
        (event,) = [event for event in events.events if event.id == event_id_]
        assert type(event.data).__name__ == PAYLOADS[kind]
    rotated = call("rotate_secret", subscription_id=hook)
    assert isinstance(rotated, models.SecretOut) and rotated.secret != created.secret
    assert rotated.previous_secret_expires_at.tzinfo is not None
    deleted = _operation(client, "webhooks", "delete").sync_detailed(
        client=api, subscription_id=hook
    )
    assert deleted.status_code == 204
    # Errors parse too: a deleted hook is a 404 problem, a missing key a 401 problem, a
    # bad body a 422 problem with its typed ``errors``.
    api = client.AuthenticatedClient(base_url=served.base, token=served.key)
    gone = _operation(client, "webhooks", "read").sync(client=api, subscription_id=hook)
    assert isinstance(gone, models.Problem) and gone.status == 404
    anonymous = client.Client(base_url=served.base)
    refused = _operation(client, "webhooks", "list").sync_detailed(client=anonymous)
    assert refused.status_code == 401 and isinstance(refused.parsed, models.Problem)
    assert refused.headers["www-authenticate"] == "Bearer"
    short = models.SubscriptionIn.from_dict({"url": "http:/"})
    invalid = _operation(client, "webhooks", "create").sync(client=api, body=short)
    assert isinstance(invalid, models.Problem) and invalid.status == 422
    (error,) = invalid.errors
    assert isinstance(error, models.ProblemError) and error.loc == ["body", "url"]

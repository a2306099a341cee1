"""Chat-ready deliveries: every event type as a readable line, Slack and Discord bodies
their services accept (receivers that refuse as they do), signed like the standard one."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select

from app.api.app import create_app
from app.auth.service import create_key
from app.db.engine import Database
from app.db.migrate import alembic_config
from app.settings import Settings
from app.signals.models import Event, event_id
from app.signals.schemas import EventType
from app.webhooks import formats
from app.webhooks.models import Delivery
from app.webhooks.schemas import WebhookFormat
from app.webhooks.worker import DeliveryWorker
from tests.webhooks.conftest import (
    MovableClock,
    Receiver,
    discord_answer,
    make_event,
    slack_answer,
    store_and_enqueue,
    subscribe,
    subscription,
    verify,
)

RULE = {"fast": 50, "slow": 200, "type": "sma"}
PROVENANCE = {"source": "yahoo", "instrument": "^RUT"}
GOLDEN = {
    "session": "2025-08-06",
    "close": 2210.4,
    "fast_value": 2140.1,
    "slow_value": 2139.8,
    "rule": RULE,
    "sessions_seen": 9000,
    **PROVENANCE,
}
# ``data`` of each event type as detection (or the one-off services) write it.
SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "golden_cross": ("^RUT", GOLDEN),
    "death_cross": ("^RUT", {**GOLDEN, "fast_value": 2139.8, "slow_value": 2140.1}),
    "cross_approaching": (
        "^RUT",
        {
            "session": "2025-07-30",
            "close": 2130.4,
            "gap_pct": -0.82,
            "fast_value": 2100.2,
            "slow_value": 2117.6,
            "trigger_close": 2150.0,
            "rule": RULE,
            "sessions_seen": 9000,
            **PROVENANCE,
        },
    ),
    "peak": (
        "^RUT",
        {
            "session": "2025-03-10",
            "extreme_session": "2024-11-25",
            "extreme_close": 2442.03,
            "close": 1953.6,
            "change_pct": 35.5,
            "sessions_to_confirm": 70,
            "rule": {"decline_pct": 20.0, "rebound_pct": 20.0},
            **PROVENANCE,
        },
    ),
    "trough": (
        "^RUT",
        {
            "session": "2025-05-12",
            "extreme_session": "2025-04-08",
            "extreme_close": 1760.71,
            "close": 2113.0,
            "change_pct": -27.9,
            "sessions_to_confirm": 24,
            "rule": {"decline_pct": 20.0, "rebound_pct": 20.0},
            **PROVENANCE,
        },
    ),
    "daily_brief": (
        "*",
        {
            "session": "2025-08-01",
            "symbols": [
                {"symbol": "^RUT", "line": "^RUT 2166.78 death, gap -0.45%"},
                {"symbol": "^GSPC", "line": "^GSPC 6238.01 golden, gap +4.10%"},
            ],
        },
    ),
    "retracted": (
        "^RUT",
        {
            "original_id": "evt_abc",
            "original_type": "golden_cross",
            "session": "2025-08-06",
            "reason": "revised closes no longer imply this event",
        },
    ),
    "snapshot": (
        "*",
        {
            "rule": "sma:50:200",
            "regimes": [
                {
                    "symbol": "^RUT",
                    "regime": "golden",
                    "since_session": "2025-08-06",
                    "cross_event_id": "evt_x",
                }
            ],
        },
    ),
    "test": ("*", {"message": "a test delivery from Crosswatch", "subscription_id": 7}),
    "cross_watch": (
        "^RUT",
        {
            "direction": "golden",
            "live_price": 2145.2,
            "trigger_close": 2130.03,
            "distance_pct": -0.71,
            "as_of": "2025-08-06T15:00:00-04:00",
            "session": "2025-08-06",
            "rule": RULE,
            "provisional": True,
        },
    ),
    "cross_watch_missed": (
        "^RUT",
        {
            "direction": "golden",
            "close": 2120.5,
            "trigger_close": 2130.03,
            "session": "2025-08-06",
            "rule": RULE,
        },
    ),
}
EXPECTED = {
    "golden_cross": "^RUT golden cross on 2025-08-06: 50-day SMA 2,140.1 crossed above "
    "200-day 2,139.8; close 2,210.40",
    "death_cross": "^RUT death cross on 2025-08-06: 50-day SMA 2,139.8 crossed below "
    "200-day 2,140.1; close 2,210.40",
    "cross_approaching": "^RUT nears a golden cross on 2025-07-30: 50-day SMA 2,100.2 is "
    "0.82% below 200-day 2,117.6; close 2,130.40, a close of 2,150.00 would cross",
    "peak": "^RUT peak confirmed on 2025-03-10: high 2,442.03 on 2024-11-25, close "
    "1,953.60 (-20.0% from it); rise from the previous trough 35.5%",
    "trough": "^RUT trough confirmed on 2025-05-12: low 1,760.71 on 2025-04-08, close "
    "2,113.00 (+20.0% from it); decline from the previous peak 27.9%",
    "daily_brief": "Daily brief for 2025-08-01: 2 symbols\n^RUT 2166.78 death, gap -0.45%\n"
    "^GSPC 6238.01 golden, gap +4.10%",
    "retracted": "^RUT golden cross of 2025-08-06 retracted: revised closes no longer "
    "imply this event (event evt_abc)",
    "snapshot": "Snapshot (sma:50:200): ^RUT golden since 2025-08-06",
    "test": "Test delivery to subscription 7: a test delivery from Crosswatch",
    "cross_watch": "^RUT golden cross watch on 2025-08-06: live price 2,145.20 at "
    "15:00 -04:00 is above the trigger close 2,130.03 (by 0.71%); provisional until the "
    "close (sma 50/200)",
    "cross_watch_missed": "^RUT golden cross watch of 2025-08-06 not confirmed: close 2,120.50 "
    "did not reach the trigger close 2,130.03",
}


def _event(event_type: str) -> dict[str, Any]:
    symbol, data = SAMPLES[event_type]
    return {
        "id": "evt_1",
        "type": event_type,
        "symbol": symbol,
        "session": data.get("session", "2025-08-06"),
        "live": True,
        "data": data,
        "created_at": "2025-08-06T22:00:00+00:00",
    }


@pytest.mark.parametrize("event_type", sorted(SAMPLES))
def test_each_event_type_reads_as_one_line(event_type: str) -> None:
    assert formats.render_text(_event(event_type)) == EXPECTED[event_type]


def test_every_stored_event_type_has_its_own_line() -> None:
    # A type added to EventType without a renderer (and a sample here) fails this.
    for event_type in EventType:
        text = formats.render_text(_event(event_type.value))
        assert text != formats.generic_line(_event(event_type.value)), event_type


def test_a_rule_reads_the_same_as_its_key_or_its_fields() -> None:
    keyed = _event("cross_watch")
    keyed["data"] = {**keyed["data"], "rule": "sma:50:200"}
    assert formats.render_text(keyed) == EXPECTED["cross_watch"]


def test_unknown_types_and_unexpected_data_get_a_generic_line() -> None:
    future = {
        "type": "volume_spike",
        "symbol": "^RUT",
        "session": "2025-08-06",
        "data": {"session": "2025-08-06", "relative_volume": 3.25, "note": "late print"},
    }
    assert formats.render_text(future) == (
        "^RUT volume spike on 2025-08-06: relative volume 3.25, note late print"
    )
    garbled = {"type": "golden_cross", "symbol": "^RUT", "session": "2025-08-06", "data": {}}
    assert formats.render_text(garbled) == "^RUT golden cross on 2025-08-06"
    stringly = {**garbled, "data": {**GOLDEN, "close": "2210.4"}}
    assert formats.render_text(stringly).startswith("^RUT golden cross on 2025-08-06: close")


def test_the_brief_is_its_markdown_when_it_carries_one() -> None:
    markdown = "# Daily brief 2025-08-01\n\n**^RUT** 2,166.78 (death)"
    event = _event("daily_brief")
    event["data"] = {**event["data"], "text": markdown}
    assert formats.render_text(event) == markdown
    slack = json.loads(formats.chat_body(WebhookFormat.slack, json.dumps(event).encode()))
    assert slack == {"text": "*Daily brief 2025-08-01*\n\n*^RUT* 2,166.78 (death)"}
    discord = json.loads(formats.chat_body(WebhookFormat.discord, json.dumps(event).encode()))
    assert discord == {"content": markdown, "allowed_mentions": {"parse": []}}


def test_slack_text_escapes_its_control_characters() -> None:
    assert formats.slack_markup("a < b & c > d") == "a &lt; b &amp; c &gt; d"


def test_truncate_keeps_whole_lines_and_ends_with_an_ellipsis() -> None:
    text = "\n".join(f"line {i:04d} " + "x" * 30 for i in range(100))
    cut = formats.truncate(text, 2000)
    assert len(cut) <= 2000 and cut.endswith("\n…")
    kept = cut.removesuffix("\n…").split("\n")
    # 41 characters a line with its newline: 48 lines and "\n…" make 1,969; 49 would not fit.
    assert kept == text.split("\n")[:48]
    assert formats.truncate("short", 2000) == "short"
    assert formats.truncate("y" * 3000, 2000) == "y" * 1999 + "…"
    exact = "z" * 2000
    assert formats.truncate(exact, 2000) == exact


def test_truncate_closes_a_code_block_it_cuts() -> None:
    text = "intro\n```\n" + "\n".join(f"row {i:04d} " + "y" * 40 for i in range(100)) + "\n```"
    cut = formats.truncate(text, 2000)
    assert len(cut) <= 2000 and cut.endswith("\n```\n…")
    assert text.startswith(cut.removesuffix("\n```\n…"))
    assert formats.truncate("intro\n```\n" + "z" * 3000, 2000) == "intro\n…"


def test_tables_become_aligned_columns_in_a_code_block() -> None:
    markdown = "\n".join(
        [
            "## Indices",
            "",
            "| Index | Close | Regime |",
            "| --- | --: | --- |",
            "| ^RUT | 2,166.78 | death |",
            "| ^GSPC | 6,238.01 | golden |",
            "",
            "| not | a table |",
            "after",
        ]
    )
    assert formats.fence_tables(markdown).split("\n") == [
        "## Indices",
        "",
        "```",
        "Index     Close  Regime",
        "-----  --------  ------",
        "^RUT   2,166.78  death",
        "^GSPC  6,238.01  golden",
        "```",
        "",
        "| not | a table |",
        "after",
    ]


def test_the_receivers_refuse_as_slack_and_discord_do() -> None:
    assert slack_answer(b'{"text": "hi"}') == (200, b"ok")
    assert slack_answer(b'{"type": "golden_cross"}') == (400, b"no_text")
    assert slack_answer(b"not json") == (400, b"invalid_payload")
    assert discord_answer(b'{"content": "hi"}') == (204, b"")
    assert discord_answer(b'{"type": "golden_cross"}')[0] == 400
    assert discord_answer(json.dumps({"content": "x" * 2001}).encode())[0] == 400


def _brief_event(now: datetime, text: str | None) -> Event:
    data: dict[str, Any] = {"session": "2026-08-21", "symbols": []}
    if text is not None:
        data["text"] = text
    return Event(
        id=event_id("*", "brief", "daily_brief", date(2026, 8, 21)),
        type="daily_brief",
        symbol="*",
        session=date(2026, 8, 21),
        rule="brief",
        live=True,
        data=data,
        created_at=now,
    )


ROWS = [f"| ^SYM{i:03d} | 2,166.78 | death | -0.45% | 2,130.03 |" for i in range(200)]
LONG_BRIEF = "\n".join(
    [
        "# Daily brief 2026-08-21",
        "",
        "| Symbol | Close | Regime | Gap | Trigger |",
        "| --- | --: | --: | --: | --: |",
        *ROWS,
    ]
)


def test_slack_and_discord_receive_bodies_they_accept_signed_over_the_sent_bytes(
    db: Database, local_settings: Settings, clock: MovableClock, receiver: Receiver
) -> None:
    receiver.answers["/slack"] = slack_answer
    receiver.answers["/discord"] = discord_answer
    receiver.answers["/slack-standard"] = slack_answer
    now = clock()
    slack_id, slack_secret = subscribe(db, receiver.url("/slack"), now=now, format="slack")
    discord_id, discord_secret = subscribe(db, receiver.url("/discord"), now=now, format="discord")
    standard_id, standard_secret = subscribe(db, receiver.url("/hook"), now=now)
    refused_id, _ = subscribe(db, receiver.url("/slack-standard"), now=now)
    assert subscription(db, standard_id).format == "standard"
    cross = make_event(now=now)
    brief = _brief_event(now, LONG_BRIEF)
    assert store_and_enqueue(db, [cross, brief], now) == 8

    async def deliver() -> int:
        async with DeliveryWorker(db, local_settings, clock=clock, random=lambda: 0.5) as w:
            return await w.run_once()

    assert asyncio.run(deliver()) == 8

    with db.transaction(write=False) as session:
        outcome = {
            (d.subscription_id, d.event_id): (d.status, d.last_status)
            for d in session.scalars(select(Delivery))
        }
    for sub_id, code in [(slack_id, 200), (discord_id, 204), (standard_id, 200)]:
        assert outcome[(sub_id, cross.id)] == ("succeeded", code)
        assert outcome[(sub_id, brief.id)] == ("succeeded", code)
    # The standard envelope is what Slack refuses: why the formats exist.
    assert outcome[(refused_id, cross.id)] == ("pending", 400)

    slack = {r.headers["webhook-id"]: r for r in receiver.at("/slack")}
    assert verify(slack_secret, slack[cross.id]) == {
        "text": "^RUT golden cross on 2026-08-21: 50-day SMA 2,150.0 crossed above "
        "200-day 2,149.0; close 2,200.50"
    }
    slack_brief = verify(slack_secret, slack[brief.id])["text"].split("\n")
    assert slack_brief[:5] == [
        "*Daily brief 2026-08-21*",
        "",
        "```",
        "Symbol      Close  Regime     Gap   Trigger",
        "-------  --------  ------  ------  --------",
    ]
    assert slack_brief[5] == "^SYM000  2,166.78   death  -0.45%  2,130.03"
    assert slack_brief[-1] == "```" and len(slack_brief) == 206

    discord = {r.headers["webhook-id"]: r for r in receiver.at("/discord")}
    assert verify(discord_secret, discord[cross.id])["content"].startswith(
        "^RUT golden cross on 2026-08-21: 50-day SMA 2,150.0"
    )
    content = verify(discord_secret, discord[brief.id])["content"]
    assert len(LONG_BRIEF) > 2000 and len(content) <= 2000
    lines = content.split("\n")
    assert lines[:3] == ["# Daily brief 2026-08-21", "", "```"]
    assert lines[-2:] == ["```", "…"] and lines[-3].startswith("^SYM")

    standard = {r.headers["webhook-id"]: r for r in receiver.at("/hook")}
    body = verify(standard_secret, standard[cross.id])
    assert body["type"] == "golden_cross" and body["data"]["id"] == cross.id
    assert body["data"]["data"]["close"] == 2200.5
    assert verify(standard_secret, standard[brief.id])["data"]["data"]["text"] == LONG_BRIEF


def test_a_brief_without_markdown_reaches_slack_as_its_summary(
    db: Database, local_settings: Settings, clock: MovableClock, receiver: Receiver
) -> None:
    receiver.answers["/slack"] = slack_answer
    now = clock()
    _id, secret = subscribe(db, receiver.url("/slack"), now=now, format="slack")
    store_and_enqueue(db, [_brief_event(now, None)], now)

    async def deliver() -> int:
        async with DeliveryWorker(db, local_settings, clock=clock) as worker:
            return await worker.run_once()

    assert asyncio.run(deliver()) == 1
    (received,) = receiver.at("/slack")
    assert verify(secret, received) == {"text": "Daily brief for 2026-08-21: 0 symbols"}


@pytest.fixture
def client(local_settings: Settings, db: Database, clock: MovableClock) -> TestClient:
    return TestClient(create_app(local_settings, db=db, clock=clock))


def test_format_is_created_read_patched_and_validated(
    client: TestClient, db: Database, receiver: Receiver
) -> None:
    with db.transaction() as session:
        _key, token = create_key(session, "alice")
    auth = {"Authorization": f"Bearer {token}"}
    url = receiver.url("/hook")
    with client:
        default = client.post("/v1/webhooks", json={"url": url}, headers=auth)
        assert default.status_code == 201 and default.json()["format"] == "standard"
        created = client.post("/v1/webhooks", json={"url": url, "format": "slack"}, headers=auth)
        assert created.status_code == 201 and created.json()["format"] == "slack"
        path = f"/v1/webhooks/{created.json()['id']}"
        assert client.get(path, headers=auth).json()["format"] == "slack"
        patched = client.patch(path, json={"format": "discord"}, headers=auth)
        assert patched.status_code == 200 and patched.json()["format"] == "discord"
        assert client.get(path, headers=auth).json()["format"] == "discord"
        for bad in ({"url": url, "format": "teams"}, {"url": url, "format": None}):
            refused = client.post("/v1/webhooks", json=bad, headers=auth)
            assert refused.status_code == 422
            assert refused.headers["content-type"] == "application/problem+json"
        for bad_patch in ({"format": "teams"}, {"format": None}):
            refused = client.patch(path, json=bad_patch, headers=auth)
            assert refused.status_code == 422, bad_patch
            assert refused.headers["content-type"] == "application/problem+json"
        assert client.get(path, headers=auth).json()["format"] == "discord"
        schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert schemas["WebhookFormat"]["enum"] == ["standard", "slack", "discord"]
    named = {"$ref": "#/components/schemas/WebhookFormat"}
    assert schemas["SubscriptionOut"]["properties"]["format"] == named
    assert "format" in schemas["SubscriptionOut"]["required"]
    assert schemas["SubscriptionIn"]["properties"]["format"]["$ref"] == named["$ref"]
    assert schemas["SubscriptionPatch"]["properties"]["format"]["anyOf"][0] == named


def test_subscriptions_made_before_the_migration_are_standard(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    config = alembic_config(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
    with sqlite3.connect(tmp_path / "old.db") as raw:
        raw.execute(
            "INSERT INTO subscriptions (url, event_types, enabled, secret, created_at, "
            "updated_at) VALUES ('https://example.com/h', '[]', 1, 'whsec_x', "
            "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
        )
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0005")
    with sqlite3.connect(tmp_path / "old.db") as raw:
        assert raw.execute("SELECT format FROM subscriptions").fetchall() == [("standard",)]
    engine.dispose()

"""Signing, retry maths, Retry-After and the SSRF guard: pure, no database or network."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook

from app.webhooks import schedule, signing, ssrf
from app.webhooks.worker import message_body

NOW = datetime.now(UTC).replace(microsecond=0)


def test_secret_is_whsec_and_24_random_bytes() -> None:
    secret = signing.new_secret()
    assert secret.startswith("whsec_")
    assert len(signing.secret_key(secret)) == 24
    assert signing.new_secret() != secret


@given(body=st.binary(max_size=500).map(lambda b: base64.b64encode(b)), msg=st.text(min_size=1))
def test_signature_matches_the_reference_library(body: bytes, msg: str) -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    msg_id = "evt_" + msg.encode().hex()[:20]
    timestamp = int(NOW.timestamp())
    ours = signing.sign(signing.secret_key(secret), msg_id, timestamp, body)
    assert ours == Webhook(secret).sign(msg_id, NOW, body.decode())


def test_both_signatures_verify_during_rotation() -> None:
    # The reference library checks the timestamp against its own clock (5 min tolerance):
    # sign at the moment of verification, not at import time.
    signed_at = datetime.now(UTC)
    old, new = signing.new_secret(), signing.new_secret()
    body = message_body("golden_cross", signed_at, b'{"id":"evt_1"}')
    keys = [signing.secret_key(new), signing.secret_key(old)]
    headers = signing.webhook_headers(keys, "evt_1", int(signed_at.timestamp()), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(body, headers)["data"] == {"id": "evt_1"}
    assert Webhook(new).verify(body, headers)["type"] == "golden_cross"
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(signing.new_secret()).verify(body, headers)


def test_schedule_without_jitter_is_the_design_table() -> None:
    middle = lambda: 0.5  # noqa: E731  (jitter factor exactly 1)
    delays = [schedule.retry_delay(n, random=middle) for n in range(1, 9)]
    assert delays == [5, 300, 1800, 7200, 18000, 36000, 36000, None]


@given(attempts=st.integers(1, 7), r=st.floats(0, 0.999999))
def test_jitter_stays_within_twenty_percent(attempts: int, r: float) -> None:
    delay = schedule.retry_delay(attempts, random=lambda: r)
    base = schedule.ATTEMPT_DELAYS[attempts]
    assert delay is not None
    assert base * 0.8 <= delay <= base * 1.2


def test_retry_after_lengthens_within_bounds_never_shortens() -> None:
    middle = lambda: 0.5  # noqa: E731
    assert schedule.retry_delay(1, random=middle, retry_after=60) == 60
    assert schedule.retry_delay(2, random=middle, retry_after=1) == 300
    assert schedule.retry_delay(1, random=middle, retry_after=10**7) == 24 * 3600
    assert schedule.retry_delay(8, random=middle, retry_after=60) is None


def test_disable_after_five_days_of_failures() -> None:
    assert not schedule.should_disable(None, NOW)
    assert not schedule.should_disable(NOW - timedelta(days=4, hours=23), NOW)
    assert schedule.should_disable(NOW - timedelta(days=5), NOW)


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "169.254.1.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "100.64.0.1",
        "::1",
        "fe80::1",
        "fd00:ec2::254",
        "::ffff:127.0.0.1",
        "::",
    ],
)
def test_non_public_addresses_are_refused(address: str) -> None:
    with pytest.raises(ssrf.UnsafeUrl):
        ssrf.check_url(
            f"http://[{address}]/" if ":" in address else f"http://{address}/",
            resolver=ssrf.system_resolver,
            allow_private=False,
        )


def test_hostname_resolving_to_a_private_address_is_refused() -> None:
    resolver = lambda host, port: ["93.184.216.34", "10.0.0.1"]  # noqa: E731
    with pytest.raises(ssrf.UnsafeUrl, match=r"10\.0\.0\.1"):
        ssrf.check_url("https://hooks.example.com/x", resolver=resolver, allow_private=False)


def test_public_address_and_scheme_rules() -> None:
    public = lambda host, port: ["93.184.216.34"]  # noqa: E731
    ssrf.check_url("https://hooks.example.com/x", resolver=public, allow_private=False)
    for bad in ("ftp://example.com/", "file:///etc/passwd", "http:///nohost", "example.com"):
        with pytest.raises(ssrf.UnsafeUrl):
            ssrf.check_url(bad, resolver=public, allow_private=True)
    ssrf.check_url("http://127.0.0.1:9/", resolver=public, allow_private=True)


def test_message_body_is_the_design_envelope() -> None:
    import json

    body = json.loads(message_body("peak", NOW, b'{"id":"evt_9","type":"peak"}'))
    assert body == {
        "type": "peak",
        "timestamp": NOW.isoformat(),
        "data": {"id": "evt_9", "type": "peak"},
    }

"""``Retry-After`` (RFC 9110): delay-seconds or an HTTP-date, counted from ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.retry_after import retry_after_seconds

NOW = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)


def _http_date(when: datetime) -> str:
    return when.strftime("%a, %d %b %Y %H:%M:%S GMT")


def test_delay_seconds() -> None:
    assert retry_after_seconds("120", NOW) == 120
    assert retry_after_seconds(" 0 ", NOW) == 0


def test_an_http_date_counts_from_now() -> None:
    assert retry_after_seconds(_http_date(NOW + timedelta(minutes=10)), NOW) == 600


def test_an_http_date_already_past_is_no_wait() -> None:
    assert retry_after_seconds(_http_date(NOW - timedelta(minutes=10)), NOW) == 0


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "１２"])
def test_absent_or_unparsable_is_none(value: str | None) -> None:
    assert retry_after_seconds(value, NOW) is None

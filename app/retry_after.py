"""``Retry-After`` (RFC 9110 §10.2.3): the one parser, for the providers' 429s and the
subscribers' answers alike.

The header is either delay-seconds (one or more digits) or an HTTP-date; the result is
the seconds to wait from ``now``, never negative, or None when the header is absent or
unparsable (the caller falls back to its own back-off).
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds asked for by a ``Retry-After`` value (delay-seconds or HTTP-date).

    ``now`` (timezone-aware) is what an HTTP-date is counted from. None when absent or
    unparsable; a date already past is 0.
    """
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())

"""Retry maths: the back-off schedule, jitter and ``Retry-After``, as pure functions.

The schedule lists the delay before each attempt, as in DESIGN §5 (and Svix): attempt 1
immediately, attempt 2 five seconds after attempt 1 failed, … attempt 8 ten hours after
attempt 7. After the eighth failure the delivery is ``failed`` (about 28 h in all).
Each delay gets ±20% jitter. A ``Retry-After`` can lengthen a delay, never shorten
it, and never beyond 24 h.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

ATTEMPT_DELAYS: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(ATTEMPT_DELAYS)
JITTER = 0.2
RETRY_AFTER_CAP = 24 * 3600.0
DISABLE_AFTER = timedelta(days=5)

Random = Callable[[], float]
"""Returns a float in [0, 1), like ``random.random``."""


def retry_delay(
    attempts_made: int,
    *,
    random: Random,
    retry_after: float | None = None,
) -> float | None:
    """Seconds to wait before the next attempt, or None when the schedule is exhausted.

    ``attempts_made`` counts the attempts so far (>= 1). ``retry_after`` (seconds, from
    the receiver) raises the delay up to 24 h but never lowers it below the schedule.
    """
    if attempts_made < 1:
        raise ValueError("attempts_made must be >= 1")
    if attempts_made >= MAX_ATTEMPTS:
        return None
    base = ATTEMPT_DELAYS[attempts_made]
    delay = base * (1 + JITTER * (2 * random() - 1))
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, max(RETRY_AFTER_CAP, delay))
    return delay


def should_disable(failing_since: datetime | None, now: datetime) -> bool:
    """True when every attempt to an endpoint has failed for five days or more."""
    return failing_since is not None and now - failing_since >= DISABLE_AFTER

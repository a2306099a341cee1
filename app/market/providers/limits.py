"""How hard a poll may press one provider: requests in flight, requests per second, and
a back-off every request to it shares.

One ``ProviderLimit`` per provider, shared by all of a poll's fetches. Each HTTP request
(a retry included) takes a turn: a free slot among ``concurrency``, then the provider's
next start time at ``rate`` requests per second, then the end of any pause. A 429 pauses
the whole provider for its ``Retry-After`` (``DEFAULT_BACK_OFF_SECONDS`` without one,
at most ``MAX_RETRY_AFTER_SECONDS``) and halves its rate until ``reset`` (the next
poll): one symbol's 429 slows every symbol's fetch, not only its own retry.

The 429s answered to requests that were already sent when the provider backed off
extend the pause but do not halve the rate again, so four requests in flight that meet
one limit lower the rate once, not four times.

``clock`` (monotonic seconds) and ``sleep`` are injected so that the arithmetic is
tested without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

#: Longest ``Retry-After`` we honour; a longer one is the next poll's business.
MAX_RETRY_AFTER_SECONDS = 60.0
#: The pause after a 429 that does not say how long to wait.
DEFAULT_BACK_OFF_SECONDS = 2.0
#: A rate is never lowered below this (requests per second).
MIN_RATE = 0.05
#: The rate an unlimited provider falls back to after its first 429.
UNLIMITED_BACK_OFF_RATE = 1.0


class ProviderLimit:
    """Slots, pacing and the shared back-off of one provider.

    ``rate`` is requests per second (``None``: no pacing). Use ``turn()`` around each
    request; call ``back_off`` with the ticket it yields when the provider answers 429.
    """

    def __init__(
        self,
        name: str,
        *,
        concurrency: int,
        rate: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if concurrency < 1:
            raise ValueError("a provider needs at least one request in flight")
        if rate is not None and rate <= 0:
            raise ValueError("a provider's rate must be positive")
        self.name = name
        self.concurrency = concurrency
        self.configured_rate = rate
        self._clock = clock
        self._sleep = sleep
        self._slots = asyncio.Semaphore(concurrency)
        self.reset()

    def reset(self) -> None:
        """Back to the configured rate, no pause: a new poll starts afresh."""
        self.rate = self.configured_rate
        self.paused_until = 0.0
        self.back_offs = 0
        self._next_start = 0.0

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[int]:
        """Hold a slot from the request's start to its answer; yields the ticket for
        ``back_off`` (how many back-offs had happened when the request was sent)."""
        async with self._slots:
            await self._wait_for_start()
            yield self.back_offs

    async def _wait_for_start(self) -> None:
        # Re-checked after every sleep: a 429 met meanwhile pauses or slows this request.
        while True:
            now = self._clock()
            start = max(now, self.paused_until, self._next_start)
            if start <= now:
                self._next_start = now + (1.0 / self.rate if self.rate else 0.0)
                return
            await self._sleep(start - now)

    def back_off(self, retry_after: float | None, *, ticket: int) -> None:
        """The provider answered 429 to a request sent with ``ticket``: pause every
        request to it, and lower its rate unless a back-off already followed that
        request's start."""
        wait = DEFAULT_BACK_OFF_SECONDS if retry_after is None else retry_after
        wait = min(max(wait, 0.0), MAX_RETRY_AFTER_SECONDS)
        self.paused_until = max(self.paused_until, self._clock() + wait)
        if ticket != self.back_offs:
            return
        self.back_offs += 1
        if self.rate is None:
            self.rate = UNLIMITED_BACK_OFF_RATE
        else:
            self.rate = max(MIN_RATE, self.rate / 2)

"""``ProviderLimit``'s arithmetic on a fake clock: pacing, the shared pause after a 429,
the rate halved once per back-off, and a fresh start each poll."""

from __future__ import annotations

import asyncio

import pytest

from app.market.providers.limits import (
    DEFAULT_BACK_OFF_SECONDS,
    MAX_RETRY_AFTER_SECONDS,
    MIN_RATE,
    UNLIMITED_BACK_OFF_RATE,
    ProviderLimit,
)


class FakeTime:
    """A monotonic clock that ``sleep`` advances: nothing really waits."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


def _limit(fake: FakeTime, *, rate: float | None, concurrency: int = 4) -> ProviderLimit:
    return ProviderLimit("yahoo", concurrency=concurrency, rate=rate, clock=fake, sleep=fake.sleep)


async def _starts(limit: ProviderLimit, fake: FakeTime, count: int) -> list[float]:
    starts: list[float] = []
    for _ in range(count):
        async with limit.turn():
            starts.append(fake.now)
    return starts


def test_requests_start_no_faster_than_the_rate() -> None:
    fake = FakeTime()
    starts = asyncio.run(_starts(_limit(fake, rate=2.0), fake, 4))
    assert starts == [100.0, 100.5, 101.0, 101.5]


def test_an_unpaced_provider_never_waits() -> None:
    fake = FakeTime()
    starts = asyncio.run(_starts(_limit(fake, rate=None), fake, 3))
    assert starts == [100.0, 100.0, 100.0] and fake.slept == []


def test_a_429_pauses_every_request_for_retry_after_and_halves_the_rate() -> None:
    fake = FakeTime()
    limit = _limit(fake, rate=4.0)

    async def go() -> list[float]:
        async with limit.turn() as ticket:
            limit.back_off(3.0, ticket=ticket)
        return await _starts(limit, fake, 3)

    starts = asyncio.run(go())
    assert starts == [103.0, 103.5, 104.0]  # after the pause, at 2 requests a second
    assert limit.rate == 2.0 and limit.back_offs == 1


def test_429s_of_requests_already_in_flight_lower_the_rate_once() -> None:
    fake = FakeTime()
    limit = _limit(fake, rate=8.0)
    limit.back_off(1.0, ticket=0)
    limit.back_off(5.0, ticket=0)  # sent before the first back-off: pause longer only
    assert limit.rate == 4.0 and limit.paused_until == 105.0
    limit.back_off(None, ticket=1)  # sent after it: a new limit met
    assert limit.rate == 2.0 and limit.back_offs == 2


def test_retry_after_is_capped_and_defaulted() -> None:
    fake = FakeTime()
    limit = _limit(fake, rate=None)
    limit.back_off(None, ticket=0)
    assert limit.paused_until == 100.0 + DEFAULT_BACK_OFF_SECONDS
    assert limit.rate == UNLIMITED_BACK_OFF_RATE
    limit.back_off(3600.0, ticket=0)
    assert limit.paused_until == 100.0 + MAX_RETRY_AFTER_SECONDS


def test_the_rate_never_falls_below_the_floor() -> None:
    fake = FakeTime()
    limit = _limit(fake, rate=0.06)
    for ticket in range(3):
        limit.back_off(0.0, ticket=ticket)
    assert limit.rate == MIN_RATE


def test_a_new_poll_starts_at_the_configured_rate_without_pause() -> None:
    fake = FakeTime()
    limit = _limit(fake, rate=2.0)
    limit.back_off(30.0, ticket=0)
    limit.reset()
    assert limit.rate == 2.0 and limit.paused_until == 0.0 and limit.back_offs == 0
    assert asyncio.run(_starts(limit, fake, 1)) == [100.0]


def test_at_most_concurrency_turns_are_held_at_once() -> None:
    fake = FakeTime()
    limit = _limit(fake, rate=None, concurrency=2)
    held = 0
    most = 0

    async def one() -> None:
        nonlocal held, most
        async with limit.turn():
            held += 1
            most = max(most, held)
            for _ in range(3):  # let the other tasks try to enter meanwhile
                await asyncio.sleep(0)
            held -= 1

    async def go() -> None:
        await asyncio.gather(*(one() for _ in range(6)))

    asyncio.run(go())
    assert most == 2


@pytest.mark.parametrize(("concurrency", "rate"), [(0, 1.0), (1, 0.0), (1, -2.0)])
def test_nonsense_limits_are_refused(concurrency: int, rate: float) -> None:
    with pytest.raises(ValueError):
        ProviderLimit("yahoo", concurrency=concurrency, rate=rate)

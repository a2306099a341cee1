"""The provider interface, its errors, and the one retrying HTTP GET every provider uses.

Exception hierarchy (every error carries ``.reason``, one line for the poll run's
record, and ``.retryable``)::

    ProviderError                 base; never raised itself
    ├── ProviderUnavailable       network error, timeout, HTTP 429/401/403/5xx,
    │                             vendor rate limit; retryable (except a daily quota)
    ├── ProviderNotConfigured     a key or folder the provider needs is not set;
    │                             raised before any request is made
    ├── BadResponse               HTML where data was expected, an error body,
    │                             an empty body, something unparsable
    ├── SymbolNotSupported        the provider has no mapping for the symbol
    └── NoData                    the vendor answered properly but has no bars

Only ``retryable`` errors are retried in place (``RetryPolicy``); the chain falls
back to the next provider on any ``ProviderError``. Anything else is a bug and
propagates.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Protocol, TypeVar

import httpx
import numpy as np
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt
from tenacity.wait import WaitBaseT, wait_exponential_jitter

from app.market.bars import Bar, FetchResult
from app.market.columns import BarColumns
from app.market.providers.limits import MAX_RETRY_AFTER_SECONDS, ProviderLimit
from app.retry_after import retry_after_seconds

T = TypeVar("T")


class Provider(Protocol):
    """Fetches daily bars of one canonical symbol (``^RUT``, ``^GSPC``, ``IWM``…).

    ``since=None`` asks for the full history; otherwise bars on or after ``since``.
    ``now`` is the caller's clock (a timezone-aware datetime): a provider never reads
    the wall clock, and never returns a bar whose session has not closed at ``now``.
    Raises a ``ProviderError`` subclass on failure.
    """

    name: str

    async def fetch(self, symbol: str, since: date | None, *, now: datetime) -> FetchResult: ...


class ProviderError(Exception):
    """Base of every provider failure: ``reason`` is one readable line."""

    retryable: bool = False

    def __init__(self, reason: str, *, retryable: bool | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if retryable is not None:
            self.retryable = retryable


class ProviderUnavailable(ProviderError):
    """The vendor could not be reached or refused for now; worth trying again."""

    retryable = True

    def __init__(
        self, reason: str, *, retryable: bool | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(reason, retryable=retryable)
        self.retry_after = retry_after


class ProviderNotConfigured(ProviderError):
    """A setting the provider needs (API key, folder) is missing."""


class BadResponse(ProviderError):
    """The vendor answered, but not with data we can trust or parse."""


class SymbolNotSupported(ProviderError):
    """The provider cannot serve this canonical symbol."""


class NoData(ProviderError):
    """The vendor answered properly but has no bars for the symbol and range."""


def closed_result(
    source: str, instrument: str, bars: Sequence[Bar], since: date | None
) -> FetchResult:
    """The bars on or after ``since`` as a result; ``NoData`` when none are left."""
    kept: Sequence[Bar]
    if isinstance(bars, BarColumns):
        kept = bars if since is None else bars.take(bars.sessions >= np.datetime64(since, "D"))
    else:
        kept = [bar for bar in bars if since is None or bar.session >= since]
    if not kept:
        after = "" if since is None else f" on or after {since.isoformat()}"
        raise NoData(f"{source} returned no closed sessions for {instrument}{after}")
    return FetchResult(source=source, instrument=instrument, bars=kept)


def _retry_after_aware(base: WaitBaseT) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        delay = float(base(state))
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, ProviderUnavailable) and error.retry_after is not None:
            delay = max(delay, min(error.retry_after, MAX_RETRY_AFTER_SECONDS))
        return delay

    return wait


@dataclass(frozen=True)
class RetryPolicy:
    """How retryable errors are retried: ``retries`` extra attempts after the first.

    The default wait is exponential back-off with jitter (1 s, 2 s, 4 s… capped at
    30 s, plus up to 1 s of jitter), stretched to a server's ``Retry-After``. Tests
    pass ``sleep`` (a recording fake) so nothing really sleeps.
    """

    retries: int = 3
    wait: WaitBaseT = field(
        default_factory=lambda: wait_exponential_jitter(initial=1, max=30, jitter=1)
    )
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def run(self, operation: Callable[[], Awaitable[T]]) -> T:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=_retry_after_aware(self.wait),
            retry=retry_if_exception(lambda exc: isinstance(exc, ProviderError) and exc.retryable),
            sleep=self.sleep,
            reraise=True,
        )
        result: T = await retrying(operation)
        return result


def _retry_after(response: httpx.Response) -> float | None:
    # An HTTP-date counts from the wall clock: it is the vendor's clock against ours,
    # not a session's time (``now`` in ``fetch``).
    return retry_after_seconds(response.headers.get("retry-after"), datetime.now(UTC))


async def http_get(
    client: httpx.AsyncClient,
    vendor: str,
    url: str,
    *,
    params: Mapping[str, str | int],
    timeout: float,
    limit: ProviderLimit | None = None,
) -> httpx.Response:
    """One GET; transport failures and 429/5xx become ``ProviderUnavailable``.

    With a ``limit``, the GET waits its turn (a slot, the provider's pace, the end of
    any pause), and a 429 backs the whole provider off (``ProviderLimit.back_off``).
    Other statuses are returned for the provider to interpret (Yahoo and FRED put
    their error text in 4xx bodies). Reasons never include the URL: it may hold a key.
    """
    if limit is None:
        response = await _get(client, vendor, url, params=params, timeout=timeout)
    else:
        async with limit.turn() as ticket:
            response = await _get(client, vendor, url, params=params, timeout=timeout)
            if response.status_code == 429:
                limit.back_off(_retry_after(response), ticket=ticket)
    if response.status_code == 429:
        raise ProviderUnavailable(
            f"{vendor} rate limit: HTTP 429 {body_excerpt(response)}".rstrip(),
            retry_after=_retry_after(response),
        )
    if response.status_code >= 500:
        raise ProviderUnavailable(
            f"{vendor} server error: HTTP {response.status_code} {body_excerpt(response)}".rstrip()
        )
    return response


async def _get(
    client: httpx.AsyncClient,
    vendor: str,
    url: str,
    *,
    params: Mapping[str, str | int],
    timeout: float,
) -> httpx.Response:
    try:
        return await client.get(url, params=params, timeout=timeout)
    except httpx.TimeoutException:
        raise ProviderUnavailable(f"{vendor} did not answer within {timeout:g} s") from None
    except httpx.TransportError as exc:
        raise ProviderUnavailable(
            f"{vendor} could not be reached: {type(exc).__name__}: {exc}"
        ) from None


def body_excerpt(response: httpx.Response, limit: int = 80) -> str:
    """The start of a body on one line, for error reasons."""
    text = " ".join(response.text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"

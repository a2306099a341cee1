"""Market-data providers behind one interface, and the chain that falls back between them.

``Provider.fetch(symbol, since, *, now) -> FetchResult`` (see ``base``). Only these
modules talk to data vendors. ``build_providers`` turns the settings into the
configured providers, in order; ``ProviderChain`` tries them.

Decisions
---------
- **No live bars leave a provider.** Yahoo drops the bar of a session Yahoo itself
  calls unfinished (``regularMarketTime < currentTradingPeriod.regular.end``) and, for
  US listings, any session after ``calendar.last_closed_session(now)``; Stooq applies
  the XNYS rule too. ``validate_bars`` checks the same rule again, with a reason.
- **Errors:** one hierarchy (``ProviderError`` → ``ProviderUnavailable``,
  ``ProviderNotConfigured``, ``BadResponse``, ``SymbolNotSupported``, ``NoData``),
  each with a one-line ``reason`` that never contains the request URL (keys).
  Yahoo 401/403 count as unavailable (an expired crumb is transient); Yahoo 404 and
  "data doesn't exist" 400 are ``NoData``; Stooq's daily hits limit is unavailable
  but not retried in place; a missing key or folder fails before any request.
- **Retries:** only ``retryable`` errors (transport errors, timeouts, 429, 5xx, Yahoo
  401/403), ``settings.provider_retries`` extra attempts, exponential back-off with
  jitter (tenacity), stretched to ``Retry-After`` up to 60 s. ``RetryPolicy`` takes
  the ``sleep`` so tests never sleep.
- **Empty after filtering is ``NoData``:** a ``FetchResult`` always holds at least one
  closed bar on or after ``since``, so the chain moves on rather than storing nothing.
- **Prices:** Yahoo's float32 noise is removed by taking the shortest decimal with the
  same float32 (``216.16000366210938`` → ``216.16``); no other rounding. A row whose
  close is null but other values are present becomes a NaN close so that validation
  rejects it with its date; Yahoo's all-null placeholder rows are dropped.
- **Symbol maps:** Yahoo: identity. Stooq: ``^GSPC``→``^spx``, ``^IXIC``→``^ndq``,
  ``^DJI``→``^dji``, US tickers ``IWM``→``iwm.us``; ``^RUT`` unsupported. FRED:
  ``^GSPC``→``SP500``, ``^IXIC``→``NASDAQCOM``, ``^DJI``→``DJIA``; nothing else.
  CSV: ``{CSV_DIR}/{SYMBOL}.csv`` or without ``^``, any case.
- **Limits:** each provider has a ``ProviderLimit`` (``limits``): at most
  ``PROVIDER_CONCURRENCY`` requests in flight and ``PROVIDER_RATE`` requests per
  second (Yahoo 2, FRED 2, Stooq 1, csv unpaced by default). A 429 pauses every
  request to that provider for its ``Retry-After`` and halves its rate until the next
  poll (``ProviderChain.new_poll``).
- **Proxies are loud:** the chain tries ``proxies[symbol]`` only after every provider
  failed for the symbol itself; ``FetchResult.instrument`` then names the proxy and
  ``ChainResult.is_proxy`` is true. A proxy's price level differs from the index's:
  callers must not splice the two series.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from app.market.providers.base import (
    BadResponse,
    NoData,
    Provider,
    ProviderError,
    ProviderNotConfigured,
    ProviderUnavailable,
    RetryPolicy,
    SymbolNotSupported,
)
from app.market.providers.chain import AllProvidersFailed, Attempt, ChainResult, ProviderChain
from app.market.providers.csvdir import CsvDirProvider
from app.market.providers.fred import FredProvider
from app.market.providers.limits import ProviderLimit
from app.market.providers.stooq import StooqProvider
from app.market.providers.yahoo import YahooProvider
from app.settings import Settings

__all__ = [
    "AllProvidersFailed",
    "Attempt",
    "BadResponse",
    "ChainResult",
    "CsvDirProvider",
    "FredProvider",
    "NoData",
    "Provider",
    "ProviderChain",
    "ProviderError",
    "ProviderLimit",
    "ProviderNotConfigured",
    "ProviderUnavailable",
    "RetryPolicy",
    "StooqProvider",
    "SymbolNotSupported",
    "YahooProvider",
    "build_chain",
    "build_limits",
    "build_providers",
]


def build_limits(settings: Settings) -> dict[str, ProviderLimit]:
    """One ``ProviderLimit`` per configured provider, from ``PROVIDER_CONCURRENCY`` and
    ``PROVIDER_RATE`` (a provider without a rate is not paced)."""
    return {
        name: ProviderLimit(
            name,
            concurrency=settings.provider_concurrency[name],
            rate=settings.provider_rate.get(name),
        )
        for name in settings.providers
    }


def build_providers(
    settings: Settings,
    client: httpx.AsyncClient,
    *,
    retry: RetryPolicy | None = None,
    limits: Mapping[str, ProviderLimit] | None = None,
) -> list[Provider]:
    """The providers named in ``settings.providers``, in that order, sharing ``client``.

    ``retry`` defaults to ``settings.provider_retries`` with the standard back-off.
    ``limits`` (by provider name) pace each provider's requests; none by default.
    A provider whose key or folder is missing is still built: it fails with
    ``ProviderNotConfigured`` at fetch time, which the chain records and skips.
    """
    policy = retry or RetryPolicy(retries=settings.provider_retries)
    timeout = settings.provider_timeout_seconds
    limits = limits or {}
    providers: list[Provider] = []
    for name in settings.providers:
        limit = limits.get(name)
        if name == "yahoo":
            providers.append(
                YahooProvider(
                    client,
                    base_url=str(settings.yahoo_base_url),
                    timeout=timeout,
                    retry=policy,
                    limit=limit,
                )
            )
        elif name == "stooq":
            providers.append(
                StooqProvider(
                    client,
                    base_url=str(settings.stooq_base_url),
                    api_key=settings.stooq_api_key,
                    timeout=timeout,
                    retry=policy,
                    limit=limit,
                )
            )
        elif name == "fred":
            providers.append(
                FredProvider(
                    client,
                    base_url=str(settings.fred_base_url),
                    api_key=settings.fred_api_key,
                    timeout=timeout,
                    retry=policy,
                    limit=limit,
                )
            )
        elif name == "csv":
            providers.append(CsvDirProvider(settings.csv_dir, limit=limit))
        else:
            raise ValueError(f"unknown provider {name!r}")
    return providers


def provider_client(
    settings: Settings, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """The HTTP client every provider request of a process goes through (polls and
    the intraday watch): the configured timeout, our User-Agent, redirects followed;
    ``transport`` replaces the network in tests."""
    return httpx.AsyncClient(
        transport=transport,
        timeout=settings.provider_timeout_seconds,
        headers={"User-Agent": "crosswatch/0.1 (+https://github.com/crosswatch)"},
        follow_redirects=True,
    )


def build_chain(
    settings: Settings, client: httpx.AsyncClient, *, retry: RetryPolicy | None = None
) -> ProviderChain:
    """``build_providers`` wrapped in a chain with the configured proxies, each provider
    limited by the settings (``build_limits``)."""
    limits = build_limits(settings)
    return ProviderChain(
        build_providers(settings, client, retry=retry, limits=limits),
        settings.proxies,
        limits=limits,
    )

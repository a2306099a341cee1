"""The fallback chain: providers in order, then (never silently) a proxy instrument."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from app.market.bars import FetchResult
from app.market.providers.base import Provider, ProviderError
from app.market.providers.limits import ProviderLimit


@dataclass(frozen=True, slots=True)
class Attempt:
    """One failed try: which provider, for which instrument, and why."""

    provider: str
    instrument: str
    reason: str

    def __str__(self) -> str:
        return f"{self.provider} ({self.instrument}): {self.reason}"


@dataclass(frozen=True, slots=True)
class ChainResult:
    """The bars that won, plus every failed attempt before them (for the poll record).

    ``result.instrument`` differs from ``symbol`` when a proxy stood in;
    ``is_proxy`` says so explicitly.
    """

    symbol: str
    result: FetchResult
    attempts: list[Attempt]

    @property
    def is_proxy(self) -> bool:
        return self.result.instrument != self.symbol


class AllProvidersFailed(Exception):
    """Every provider (and the proxy, if one is allowed) failed for a symbol."""

    def __init__(self, symbol: str, attempts: Sequence[Attempt]) -> None:
        self.symbol = symbol
        self.attempts = list(attempts)
        self.reason = f"no provider could fetch {symbol}: " + "; ".join(map(str, attempts))
        super().__init__(self.reason)


class ProviderChain:
    """Tries each provider for the symbol itself, then for its proxy instrument.

    A proxy (``proxies["^RUT"] == "IWM"``) is tried only after every provider failed
    for the symbol, and the result's ``instrument`` then names the proxy.
    """

    def __init__(
        self,
        providers: Sequence[Provider],
        proxies: Mapping[str, str],
        *,
        limits: Mapping[str, ProviderLimit] | None = None,
    ) -> None:
        if not providers:
            raise ValueError("a provider chain needs at least one provider")
        self.providers = list(providers)
        self.proxies = {symbol.upper(): proxy for symbol, proxy in proxies.items()}
        self.limits = dict(limits or {})

    @property
    def concurrency(self) -> int:
        """How many symbols a poll fetches at once: the most any provider takes (each
        provider's own limit still bounds the requests sent to it)."""
        return max((limit.concurrency for limit in self.limits.values()), default=1)

    def new_poll(self) -> None:
        """Each poll starts at the configured rates: a back-off lasts one poll."""
        for limit in self.limits.values():
            limit.reset()

    def instruments(self, symbol: str) -> list[str]:
        """What a fetch of ``symbol`` may ask for, in order: itself, then its proxy."""
        instruments = [symbol]
        proxy = self.proxies.get(symbol.upper())
        if proxy and proxy.upper() != symbol.upper():
            instruments.append(proxy)
        return instruments

    async def fetch(
        self, symbol: str, since: Mapping[str, date | None], *, now: datetime
    ) -> ChainResult:
        """Fetch ``symbol``, each instrument from its own ``since[instrument]``.

        Every instrument has its own stored history, so its own window: a proxy
        fetched with the index's ``since`` would never be backfilled. An instrument
        missing from ``since`` has nothing stored and is fetched in full.
        """
        attempts: list[Attempt] = []
        for instrument in self.instruments(symbol):
            for provider in self.providers:
                try:
                    result = await provider.fetch(instrument, since.get(instrument), now=now)
                except ProviderError as exc:
                    attempts.append(Attempt(provider.name, instrument, exc.reason))
                    continue
                return ChainResult(symbol=symbol, result=result, attempts=attempts)
        raise AllProvidersFailed(symbol, attempts)

"""A poll's fetch of one symbol: its bars from the provider chain, validated, and what
the writer is handed (nothing is written here)."""

from __future__ import annotations

from dataclasses import dataclass

from app.clock import Clock
from app.market import repository
from app.market.polls import SymbolOutcome
from app.market.providers import AllProvidersFailed, ProviderChain
from app.market.validation import BadData, validate_bars
from app.market.windows import Window
from app.settings import Settings


async def fetch_symbol(
    chain: ProviderChain,
    settings: Settings,
    clock: Clock,
    symbol: str,
    windows: dict[str, Window],
) -> Fetched:
    """Fetch and validate one symbol: its outcome if it failed, else what to store.
    Nothing is written here: the writer records it. Each instrument (the symbol,
    its proxy) is fetched from its own stored newest session back the overlap,
    and validated against its own left neighbour."""
    outcome = SymbolOutcome(symbol)
    now = clock()
    instruments = chain.instruments(symbol)
    since = {instrument: windows[instrument].since for instrument in instruments}
    left = {instrument: windows[instrument].left for instrument in instruments}
    try:
        fetched = await chain.fetch(symbol, since, now=now)
    except AllProvidersFailed as exc:
        outcome.error = exc.reason
        outcome.attempts = [(a.provider, a.instrument, a.reason) for a in exc.attempts]
        return outcome
    result = fetched.result
    outcome.attempts = [(a.provider, a.instrument, a.reason) for a in fetched.attempts]
    outcome.source, outcome.instrument = result.source, result.instrument
    try:
        checked = validate_bars(
            result.bars,
            now=now,
            last_stored=left.get(result.instrument),
            bad_tick_pct=settings.bad_tick_pct,
        )
    except BadData as exc:
        outcome.error = f"rejected {result.source} response: {exc.reason}"
        outcome.attempts.append((result.source, result.instrument, outcome.error))
        return outcome
    outcome.rejected = checked.rejected
    write = repository.BarWrite(symbol, checked.accepted, result.source, result.instrument)
    if not fetched.is_proxy:
        return Pending(write, outcome)
    # A proxy's prices are another instrument's: stored under its own symbol, never
    # spliced into this one (DESIGN §2: a proxy is never substituted silently).
    proxy = Pending(
        repository.BarWrite(result.instrument, checked.accepted, result.source, result.instrument),
        SymbolOutcome(result.instrument),
    )
    return Proxied(proxy, outcome)


@dataclass
class Pending:
    """A fetched, validated symbol waiting to be stored, and its outcome."""

    write: repository.BarWrite
    outcome: SymbolOutcome


@dataclass
class Proxied:
    """A symbol every provider failed, whose proxy instrument was fetched instead."""

    proxy: Pending
    outcome: SymbolOutcome


#: What a fetch hands the writer: a failure's outcome, bars to store, or a proxy's.
Fetched = SymbolOutcome | Pending | Proxied

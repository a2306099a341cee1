"""The daily bar: the one shape every provider, the importer and the store exchange."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class Bar:
    """One session's prices for one symbol. ``close`` is required; the rest may be unknown."""

    session: date
    close: float
    open: float | None = None
    high: float | None = None
    low: float | None = None
    volume: float | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What a provider returns: the bars plus who produced them.

    ``instrument`` is the symbol actually fetched (``IWM`` when it stands in for
    ``^RUT``); ``source`` is the provider's name.
    """

    source: str
    instrument: str
    bars: Sequence[Bar]

"""What one poll did for one symbol (its run's rows are written by
:mod:`app.market.repository.runs`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass
class SymbolOutcome:
    """What one poll did for one symbol."""

    symbol: str
    source: str | None = None
    instrument: str | None = None
    added: int = 0
    revised: int = 0
    rejected: list[tuple[date | None, str]] = field(default_factory=list)
    error: str | None = None
    attempts: list[tuple[str, str, str]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    newest_session: date | None = None
    backfill: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

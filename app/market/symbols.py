"""Tracking symbols: add one (the next poll backfills it) or stop tracking one.

Stopping keeps the stored bars and events (nothing stored is lost); adding it again
resumes from them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.market import repository
from app.market.models import Symbol
from app.settings import SYMBOL_PATTERN


def canonical(symbol: str) -> str:
    """Upper-case and check a symbol (letters, digits, ``^ . = -``; at most 32)."""
    cleaned = symbol.strip().upper()
    if not SYMBOL_PATTERN.fullmatch(cleaned):
        raise InvalidInput(
            f"invalid symbol {symbol!r}: use letters, digits and ^ . = - (at most 32), "
            "e.g. ^RUT or IWM"
        )
    return cleaned


def track(session: Session, symbol: str, *, now: datetime) -> tuple[Symbol, bool]:
    """Track ``symbol``; returns it and whether it was newly tracked."""
    row = session.get(Symbol, symbol)
    if row is None:
        row = Symbol(symbol=symbol, created_at=now, active=True, data_version=0)
        session.add(row)
        session.flush()
        return row, True
    if row.active:
        return row, False
    row.active = True
    row.data_version += 1
    session.flush()
    return row, True


def untrack(session: Session, symbol: str) -> None:
    """Stop tracking ``symbol`` (its data stays); 404 if it is not tracked."""
    if not repository.stop_tracking(session, symbol):
        raise NotFound(f"unknown symbol {symbol!r}: it is not tracked")

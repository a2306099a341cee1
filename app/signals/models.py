"""Events: facts derived from closes, with deterministic ids."""

from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


def event_id(symbol: str, rule: str, event_type: str, session: date) -> str:
    """The id of the fact (symbol, rule, type, session): the same on every re-detection."""
    key = f"{symbol}|{rule}|{event_type}|{session.isoformat()}"
    return "evt_" + hashlib.sha256(key.encode()).hexdigest()[:24]


class Event(Base):
    """One detected fact. ``live`` events (new sessions, explicit replays) are delivered;
    events found in backfilled history are stored and served but never pushed."""

    __tablename__ = "events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    type: Mapped[str] = mapped_column(String(32), nullable=False)
    symbol: Mapped[str] = mapped_column(String(32), nullable=False)
    session: Mapped[date] = mapped_column(Date, nullable=False)
    rule: Mapped[str] = mapped_column(String(40), nullable=False)
    live: Mapped[bool] = mapped_column(Boolean, nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # Set on an event that revised data later undid (its ``retracted`` event's id).
    retracted_by: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (
        Index("ix_events_created", "created_at", "id"),
        Index("ix_events_symbol_session", "symbol", "session"),
    )

"""Tables of the market domain: tracked symbols, daily bars, universes and poll runs."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class Symbol(Base):
    __tablename__ = "symbols"

    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Bumped by every write that changes the symbol's bars: readers cache on it.
    data_version: Mapped[int] = mapped_column(
        Integer, nullable=False, default=0, server_default="0"
    )


class DailyBar(Base):
    """One session's close (and optional OHLCV) of one symbol; unique on (symbol, session)."""

    __tablename__ = "daily_bars"

    symbol: Mapped[str] = mapped_column(
        String(32), ForeignKey("symbols.symbol", ondelete="CASCADE"), primary_key=True
    )
    session: Mapped[date] = mapped_column(Date, primary_key=True)
    close: Mapped[float] = mapped_column(Float, nullable=False)
    open: Mapped[float | None] = mapped_column(Float)
    high: Mapped[float | None] = mapped_column(Float)
    low: Mapped[float | None] = mapped_column(Float)
    volume: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(32), nullable=False)
    instrument: Mapped[str] = mapped_column(String(32), nullable=False)
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Universe(Base):
    """A named list of symbols (index constituents, a fund's holdings)."""

    __tablename__ = "universes"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class UniverseMember(Base):
    """One symbol of one universe. A symbol may belong to any number of universes."""

    __tablename__ = "universe_members"

    universe: Mapped[str] = mapped_column(
        String(64), ForeignKey("universes.name", ondelete="CASCADE"), primary_key=True
    )
    symbol: Mapped[str] = mapped_column(
        String(32), ForeignKey("symbols.symbol", ondelete="CASCADE"), primary_key=True
    )


class PollRun(Base):
    """One poll: when it ran, why, and how it ended."""

    __tablename__ = "poll_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    trigger: Mapped[str] = mapped_column(String(16), nullable=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="running")
    error: Mapped[str | None] = mapped_column(Text)
    # Progress while running, stored about once a second by the polling process, so
    # that a status page in another process shows "n of N".
    symbols_total: Mapped[int | None] = mapped_column(Integer)
    symbols_done: Mapped[int | None] = mapped_column(Integer)
    sessions_added: Mapped[int | None] = mapped_column(Integer)
    symbols_failed: Mapped[int | None] = mapped_column(Integer)


class PollResult(Base):
    """What one poll did for one symbol: sessions added, revised, rejected, and from where."""

    __tablename__ = "poll_results"

    poll_run_id: Mapped[int] = mapped_column(
        ForeignKey("poll_runs.id", ondelete="CASCADE"), primary_key=True
    )
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    source: Mapped[str | None] = mapped_column(String(32))
    instrument: Mapped[str | None] = mapped_column(String(32))
    added: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    revised: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rejected: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rejections: Mapped[list[dict[str, str]]] = mapped_column(JSON, nullable=False, default=list)
    # Providers that failed before one answered (or all of them): provider, instrument, reason.
    attempts: Mapped[list[dict[str, str]]] = mapped_column(JSON, nullable=False, default=list)
    error: Mapped[str | None] = mapped_column(Text)

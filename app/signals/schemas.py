"""Response shapes of the signal API (DESIGN §8). Percentages are in percent."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

ForwardReturns = dict[str, float | None]
ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date_only(value: object) -> object:
    # Pydantic's lax date also takes Unix timestamps ("0" is 1970-01-01) and midnight
    # datetimes; the API promises YYYY-MM-DD and nothing else.
    if isinstance(value, date) or (isinstance(value, str) and ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("must be a date as YYYY-MM-DD")


def _ytd_or_iso_date(value: str) -> str:
    # date.fromisoformat alone also takes 20240101 and ISO week dates.
    if value == "ytd" or ISO_DATE.fullmatch(value):
        return value
    raise ValueError(f"start {value!r} is neither 'ytd' nor a YYYY-MM-DD date")


def _assume_utc(value: datetime) -> datetime:
    # SQLite keeps no offset; every stored time is UTC, so say so (RFC 3339 needs one).
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _without_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL: refuse it here rather than fail in the store.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_only)]
YtdOrDate = Annotated[str, AfterValidator(_ytd_or_iso_date)]
StoredText = Annotated[str, AfterValidator(_without_nul)]
UtcDatetime = Annotated[datetime, AfterValidator(_assume_utc)]


class RuleOut(BaseModel):
    fast: int
    slow: int
    type: Literal["sma", "ema"]


class CrossRef(BaseModel):
    type: Literal["golden_cross", "death_cross"]
    session: date
    close: float


class PeakRef(BaseModel):
    session: date
    close: float


class Turn(BaseModel):
    type: Literal["peak", "trough"]
    session: date = Field(description="Session of the extreme close")
    close: float
    confirmed_session: date = Field(description="First session past the threshold")
    confirmed_close: float
    change_pct: float | None = Field(
        description="Trough: depth below the prior peak; peak: rise above the prior trough"
    )
    sessions_from_previous_turn: int | None
    sessions_to_confirm: int
    forward_returns: ForwardReturns
    forward_returns_from_confirmation: ForwardReturns


class Signal(BaseModel):
    symbol: str
    session: date
    close: float
    rule: RuleOut
    fast_value: float | None
    slow_value: float | None
    regime: Literal["golden", "death"] | None
    gap_pct: float | None
    last_cross: CrossRef | None
    sessions_since_cross: int | None
    trigger_close: float | None = Field(
        description="Next-session close that would make the averages equal"
    )
    flat_sessions_to_cross: int | None = Field(
        description="Sessions to a cross if every future close equalled today's"
    )
    drawdown_pct: float | None
    peak: PeakRef
    last_trough: Turn | None
    history_sessions: int
    source: str | None
    instrument: str | None
    expected_session: date
    stale: bool


class SignalList(BaseModel):
    signals: list[Signal]


class Cross(BaseModel):
    type: Literal["golden_cross", "death_cross"]
    session: date
    close: float
    fast_value: float
    slow_value: float
    forward_returns: ForwardReturns
    reversed_after_sessions: int | None


class CrossList(BaseModel):
    symbol: str
    rule: RuleOut
    crosses: list[Cross]
    summary: dict[str, Any]


class TurnList(BaseModel):
    symbol: str
    rule: dict[str, float]
    turns: list[Turn]


class SymbolOut(BaseModel):
    symbol: str
    first_session: date | None
    last_session: date | None
    sessions: int


class SymbolList(BaseModel):
    symbols: list[SymbolOut]


class BarOut(BaseModel):
    session: date
    close: float
    open: float | None
    high: float | None
    low: float | None
    volume: int | None
    source: str
    instrument: str


class BarList(BaseModel):
    symbol: str
    bars: list[BarOut]


class ReturnOut(BaseModel):
    symbol: str
    start_session: date
    start_close: float
    end_session: date
    end_close: float
    return_pct: float


class Comparison(BaseModel):
    start: str
    end: date | None
    returns: list[ReturnOut]


class ScanMatch(BaseModel):
    symbol: str
    type: str
    session: date
    sessions_ago: int
    data: dict[str, Any]


class ScanResult(BaseModel):
    event: str
    within: int
    matches: list[ScanMatch]


class EventOut(BaseModel):
    id: str
    type: str
    symbol: str
    session: date
    live: bool
    rule: str
    data: dict[str, Any]
    created_at: UtcDatetime
    retracted_by: str | None


class EventPage(BaseModel):
    events: list[EventOut]
    next: str | None = Field(description="Cursor for the next page (pass as `after`)")

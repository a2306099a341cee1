"""Response shapes of the signal API (DESIGN §8). Percentages are in percent."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

ForwardReturns = dict[str, float | None]


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
    created_at: datetime
    retracted_by: str | None


class EventPage(BaseModel):
    events: list[EventOut]
    next: str | None = Field(description="Cursor for the next page (pass as `after`)")

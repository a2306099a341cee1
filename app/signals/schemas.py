"""Response shapes of the signal API (DESIGN §8). Percentages are in percent."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

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


class ScanEvent(StrEnum):
    """The events a scan or a screen can look back for."""

    golden_cross = "golden_cross"
    death_cross = "death_cross"
    peak = "peak"
    trough = "trough"
    cross_approaching = "cross_approaching"


class ScreenSort(StrEnum):
    """A screen's sort: a numeric figure of its rows, ascending, or ``-figure`` descending."""

    close = "close"
    change_pct = "change_pct"
    gap_pct = "gap_pct"
    trigger_close = "trigger_close"
    trigger_distance_pct = "trigger_distance_pct"
    flat_sessions_to_cross = "flat_sessions_to_cross"
    drawdown_pct = "drawdown_pct"
    return_pct = "return_pct"
    relative_volume = "relative_volume"
    close_desc = "-close"
    change_pct_desc = "-change_pct"
    gap_pct_desc = "-gap_pct"
    trigger_close_desc = "-trigger_close"
    trigger_distance_pct_desc = "-trigger_distance_pct"
    flat_sessions_to_cross_desc = "-flat_sessions_to_cross"
    drawdown_pct_desc = "-drawdown_pct"
    return_pct_desc = "-return_pct"
    relative_volume_desc = "-relative_volume"


class Regime(StrEnum):
    """Which average is above: ``golden`` (fast above slow) or ``death``."""

    golden = "golden"
    death = "death"


class EventType(StrEnum):
    """Every type of stored event (README, Events)."""

    golden_cross = "golden_cross"
    death_cross = "death_cross"
    peak = "peak"
    trough = "trough"
    cross_approaching = "cross_approaching"
    cross_watch = "cross_watch"
    cross_watch_missed = "cross_watch_missed"
    daily_brief = "daily_brief"
    retracted = "retracted"
    snapshot = "snapshot"
    test = "test"


class ForwardReturns(BaseModel):
    """Return in percent from a session to 21, 63, 126 and 252 sessions later (null:
    not that far yet). The keys are the horizons: ``{"21": …, "63": …}``."""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True)

    after_21: float | None = Field(alias="21")
    after_63: float | None = Field(alias="63")
    after_126: float | None = Field(alias="126")
    after_252: float | None = Field(alias="252")


class RuleOut(BaseModel):
    fast: int
    slow: int
    type: Literal["sma", "ema"]


class TurnRuleOut(BaseModel):
    decline_pct: float = Field(description="Decline % confirming a peak")
    rebound_pct: float = Field(description="Rebound % confirming a trough")


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
    regime: Regime | None
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


class HorizonStats(BaseModel):
    median_pct: float | None
    share_positive: float | None = Field(description="Share of positive returns, 0..1")
    observations: int


class HorizonSummary(BaseModel):
    """Statistics of the forward returns per horizon, keyed ``"21"``, ``"63"``, …"""

    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True)

    after_21: HorizonStats = Field(alias="21")
    after_63: HorizonStats = Field(alias="63")
    after_126: HorizonStats = Field(alias="126")
    after_252: HorizonStats = Field(alias="252")


class CrossTypeSummary(BaseModel):
    count: int
    forward_returns: HorizonSummary


class CrossSummary(BaseModel):
    count: int
    golden_cross: CrossTypeSummary
    death_cross: CrossTypeSummary
    whipsaws: int = Field(description="Crosses reversed within `whipsaw_sessions`")
    whipsaw_sessions: int


class CrossList(BaseModel):
    symbol: str
    rule: RuleOut
    crosses: list[Cross]
    summary: CrossSummary


class TurnList(BaseModel):
    symbol: str
    rule: TurnRuleOut
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


class EventRef(BaseModel):
    type: Literal["golden_cross", "death_cross", "peak", "trough", "cross_approaching"]
    session: date


class ScreenRow(BaseModel):
    """One symbol's newest session; null where a figure is undefined."""

    symbol: str
    session: date
    close: float
    change_pct: float | None = Field(description="Change from the previous close, %")
    regime: Regime | None
    gap_pct: float | None
    trigger_close: float | None
    trigger_distance_pct: float | None = Field(description="|trigger_close / close - 1| in %")
    flat_sessions_to_cross: int | None
    drawdown_pct: float | None
    return_pct: float | None = Field(description="Return over `return_sessions` sessions, %")
    relative_volume: float | None = Field(
        description="Volume over the mean of the previous 50 sessions' (null without volume)"
    )
    last_event: EventRef | None = Field(description="The symbol's newest event of any type")


class ScreenResult(BaseModel):
    session: date | None = Field(description="The newest session among the chosen symbols")
    count: int = Field(description="Rows matching, before `limit`")
    rows: list[ScreenRow]


class BreadthRow(BaseModel):
    session: date
    members: int = Field(description="Members with a close that session")
    above_fast_pct: float | None = Field(
        description="Share (%) above the fast average, of members with `fast` sessions"
    )
    above_slow_pct: float | None = Field(
        description="Share (%) above the slow average, of members with `slow` sessions"
    )
    golden_regime_pct: float | None = Field(
        description="Share (%) in a golden regime, of members with a regime"
    )
    golden_crosses: int
    death_crosses: int
    new_highs: int = Field(description="Members at their highest close of 252 sessions")
    new_lows: int = Field(description="Members at their lowest close of 252 sessions")


class BreadthResult(BaseModel):
    universe: str | None = Field(description="null: every tracked symbol")
    rule: RuleOut
    rows: list[BreadthRow]

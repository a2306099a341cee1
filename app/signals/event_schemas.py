"""Event shapes of the signal API (DESIGN §4, §8): what each event type carries in
``data``, an event as served, and scan matches (whose ``data`` is an event's facts)."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from app.signals.schemas import EventType, Regime, RuleOut, TurnRuleOut, UtcDatetime

# What each event type carries (DESIGN §4). Stored payloads are served as stored:
# keys a model does not name are kept (``extra="allow"``), none is added.


class CrossFacts(BaseModel):
    """A ``golden_cross`` or ``death_cross``: the averages on the cross session."""

    model_config = ConfigDict(extra="allow")

    close: float
    fast_value: float
    slow_value: float
    rule: RuleOut
    sessions_seen: int = Field(description="Sessions of history the averages saw")


class ApproachFacts(CrossFacts):
    """A ``cross_approaching``: the death regime's gap narrowed to within 1%."""

    gap_pct: float
    trigger_close: float | None


class TurnFacts(BaseModel):
    """A confirmed ``peak`` or ``trough``; ``close`` is the confirming session's."""

    model_config = ConfigDict(extra="allow")

    extreme_session: date
    extreme_close: float
    close: float
    change_pct: float | None
    sessions_to_confirm: int
    rule: TurnRuleOut


class Provenance(BaseModel):
    session: date
    source: str | None = Field(description="Data source of the closes")
    instrument: str


class CrossData(CrossFacts, Provenance):
    """``data`` of a ``golden_cross`` or ``death_cross`` event."""


class ApproachData(ApproachFacts, Provenance):
    """``data`` of a ``cross_approaching`` event."""


class TurnData(TurnFacts, Provenance):
    """``data`` of a ``peak`` or ``trough`` event."""


class CrossWatchData(BaseModel):
    """``data`` of a ``cross_watch`` event: during ``session``, a live price at or beyond
    the trigger close in the direction of a cross. Provisional: the close settles it."""

    model_config = ConfigDict(extra="allow")

    direction: Regime = Field(description="The cross the close would make")
    live_price: float
    trigger_close: float = Field(description="The close that makes the averages equal")
    distance_pct: float = Field(
        description="Move still needed from the live price to the trigger close, in % of "
        "the live price (0 or below: at or beyond it)"
    )
    as_of: datetime = Field(description="The live price's time, with its UTC offset")
    session: date
    rule: RuleOut
    provisional: bool


class CrossWatchMissedData(BaseModel):
    """``data`` of a ``cross_watch_missed`` event: a ``cross_watch`` session whose close
    did not make the cross."""

    model_config = ConfigDict(extra="allow")

    direction: Regime
    close: float = Field(description="The session's close")
    trigger_close: float
    session: date
    rule: RuleOut
    watch_id: str = Field(description="The id of the `cross_watch` event it answers")


class BriefLine(BaseModel):
    symbol: str
    session: date
    close: float
    regime: Regime | None
    gap_pct: float | None
    trigger_close: float | None
    drawdown_pct: float | None
    stale: bool
    source: str | None
    instrument: str | None
    line: str = Field(description="The line of state, for a person to read")


class DailyBriefData(BaseModel):
    """``data`` of a ``daily_brief`` event: a line of state per symbol, and the brief
    of the tracked indices as Markdown (``GET /v1/brief`` without universe sections)."""

    model_config = ConfigDict(extra="allow")

    session: date
    symbols: list[BriefLine]
    text: str | None = Field(
        default=None, description="The brief's Markdown (null in briefs stored before it)"
    )


class RetractedData(BaseModel):
    """``data`` of a ``retracted`` event: which event revised closes undid, and why."""

    model_config = ConfigDict(extra="allow")

    original_id: str
    original_type: EventType
    session: date
    reason: str


class SnapshotRegime(BaseModel):
    symbol: str
    regime: Regime
    since_session: date
    cross_event_id: str


class SnapshotData(BaseModel):
    """``data`` of a ``snapshot`` event: the regime of each subscribed symbol."""

    model_config = ConfigDict(extra="allow")

    rule: str = Field(description="The subscription's rule, e.g. `sma:50:200`")
    regimes: list[SnapshotRegime]


class EventTestData(BaseModel):
    """``data`` of a ``test`` event."""

    model_config = ConfigDict(extra="allow")

    message: str
    subscription_id: int


# A superset first: a generated client tries the members in order.
ScanData = ApproachFacts | CrossFacts | TurnFacts
EventData = (
    ApproachData
    | CrossData
    | TurnData
    | CrossWatchData
    | CrossWatchMissedData
    | DailyBriefData
    | RetractedData
    | SnapshotData
    | EventTestData
)


class ScanMatch(BaseModel):
    symbol: str
    type: EventType
    session: date
    sessions_ago: int
    data: ScanData


class ScanResult(BaseModel):
    event: EventType
    within: int
    matches: list[ScanMatch]


class EventOut(BaseModel):
    id: str
    type: EventType
    symbol: str
    session: date
    live: bool
    rule: str
    data: EventData = Field(description="Its shape follows `type` (DESIGN §4)")
    created_at: UtcDatetime
    retracted_by: str | None


class EventPage(BaseModel):
    events: list[EventOut]
    next: str | None = Field(description="Cursor for the next page (pass as `after`)")

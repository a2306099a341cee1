"""The status facts (DESIGN §6): one model serves ``/v1/status`` and renders ``/status``."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.signals.schemas import BreadthRow, EventType, Regime

State = Literal["operational", "degraded", "down", "unknown"]


def _is_none(value: object) -> bool:
    return value is None


def _once_known() -> Any:
    """A detail given only once known: absent before (never null)."""
    return Field(default=None, exclude_if=_is_none)


class PollInProgress(BaseModel):
    """A poll running in the process that serves this status: ``done`` of ``total``."""

    run: int
    done: int = Field(description="Symbols fetched or failed so far")
    total: int = Field(description="Symbols this poll fetches")
    added: int = Field(description="Sessions added by the batches stored so far")
    failed: int = Field(description="Symbols failed so far")


class SchedulerDetails(BaseModel):
    next_poll_at: str
    in_progress: PollInProgress | None = _once_known()
    last_run: int | None = _once_known()
    last_status: str | None = _once_known()
    last_started_at: str | None = _once_known()
    last_duration_seconds: float | None = _once_known()


class ProviderDetails(BaseModel):
    run: int = Field(description="The poll judged")
    answered: str | None = Field(description="Symbols it answered, comma-separated")
    failed: str | None = Field(description="Symbols it failed, comma-separated")


class DeliveryWorkerDetails(BaseModel):
    backlog: int
    due: int
    oldest_due_age_seconds: float | None = _once_known()


class NoDetails(BaseModel):
    """The store's: its reason says it all."""

    model_config = ConfigDict(extra="forbid")


class Component(BaseModel):
    """One moving part and how it is doing, with the reason in words."""

    name: str
    kind: Literal["store", "scheduler", "provider", "delivery_worker"]
    state: State
    reason: str
    details: SchedulerDetails | ProviderDetails | DeliveryWorkerDetails | NoDetails = Field(
        default_factory=NoDetails, description="Facts behind the state; their shape follows `kind`"
    )


class CrossMarker(BaseModel):
    type: Literal["golden_cross", "death_cross"]
    session: date
    close: float


class SymbolCard(BaseModel):
    """Where one symbol stands and how fresh its data is."""

    symbol: str
    session: date = Field(description="Newest stored session")
    expected_session: date = Field(description="Newest closed XNYS session")
    stale: bool
    sessions_behind: int
    close: float
    regime: Regime | None
    gap_pct: float | None
    fast_value: float | None
    slow_value: float | None
    last_cross: CrossMarker | None
    sessions_since_cross: int | None
    trigger_close: float | None
    flat_sessions_to_cross: int | None
    drawdown_pct: float | None
    source: str | None
    instrument: str | None
    crosses_in_chart: list[CrossMarker] = Field(
        description="Crosses within the charted window (about two years)"
    )
    chart_sessions: int


class BreadthCard(BaseModel):
    """One universe's breadth under the default rule (``/v1/breadth``'s newest row)."""

    universe: str
    symbols: int = Field(description="Symbols in the universe")
    newest: BreadthRow | None = Field(description="Null until a member has a close")
    chart_sessions: int = Field(description="Sessions in the charted window (about two years)")


class RecentEvent(BaseModel):
    id: str
    type: EventType
    symbol: str
    session: date
    live: bool
    created_at: datetime


class Endpoint(BaseModel):
    """A webhook subscription in trouble. URLs and hosts stay private: the page is
    public (the owner's delivery log keeps the whole error)."""

    subscription_id: int
    since: datetime | None
    reason: str | None = Field(
        description="`HTTP <status>` or the error class of the last failure, or why it was disabled"
    )


class DeliveryHealth(BaseModel):
    attempts_24h: int
    succeeded_24h: int
    success_rate_24h: float | None = Field(description="Share of attempts answered 2xx, 0..1")
    backlog: int = Field(description="Pending deliveries")
    due: int = Field(description="Pending deliveries whose next attempt time has passed")
    oldest_due_age_seconds: float | None
    subscriptions: int
    failing: list[Endpoint]
    disabled: list[Endpoint]


class PollRunOut(BaseModel):
    id: int
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    duration_seconds: float | None
    added: int
    revised: int
    rejected: int
    errors: list[str]


class Overall(BaseModel):
    state: State
    summary: str


class StatusReport(BaseModel):
    generated_at: datetime
    overall: Overall
    components: list[Component]
    symbols: list[SymbolCard]
    events: list[RecentEvent]
    deliveries: DeliveryHealth | None = Field(description="Null until the webhook tables exist")
    polls: list[PollRunOut]
    next_poll_at: datetime | None
    breadth: list[BreadthCard] = Field(
        default_factory=list, description="One card per universe, by name"
    )

"""Request and response bodies of ``/v1/webhooks``."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from app.signals.schemas import EventType, IsoDate, StoredText, UtcDatetime


class WebhookFormat(StrEnum):
    """How a delivery's body is rendered (README, Webhook formats)."""

    standard = "standard"
    slack = "slack"
    discord = "discord"


FORMAT_DESCRIPTION = (
    '`standard`: the Standard Webhooks JSON envelope; `slack`: `{"text": …}` for a Slack '
    'incoming webhook; `discord`: `{"content": …}` (at most 2,000 characters) for a '
    "Discord webhook. Every format is signed the same way."
)


class DeliveryStatus(StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


# List bounds of a subscription (documented in the README): every list the API stores
# is bounded, so matching, replay and snapshot stay small queries.
MAX_SYMBOLS = 1000
MAX_EVENT_TYPES = len(EventType)
# A symbol as the market stores it (``app.market.symbols``: at most 32 characters).
SymbolText = Annotated[StoredText, Field(max_length=32)]
# A universe's name (``app.market.universes``: checked, and looked up, by the service).
UniverseText = Annotated[
    StoredText,
    Field(
        min_length=1,
        max_length=64,
        description="A universe's name: only events of its members (when each event is "
        "written) match. With `symbols` too, the symbol must be in both.",
        examples=["russell2000"],
    ),
]


class SubscriptionRule(BaseModel):
    """Custom moving-average windows; events for this rule are detected for the hook."""

    model_config = ConfigDict(extra="forbid")

    fast: StrictInt = Field(ge=2, le=1000)
    slow: StrictInt = Field(ge=2, le=1000)
    type: Literal["sma", "ema"] = "sma"

    @model_validator(mode="after")
    def _fast_below_slow(self) -> SubscriptionRule:
        if self.fast >= self.slow:
            raise ValueError("rule.fast must be smaller than rule.slow")
        return self


def _symbols(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    cleaned = sorted({symbol.strip().upper() for symbol in value if symbol.strip()})
    return cleaned or None


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: StoredText = Field(min_length=8, max_length=2048, examples=["https://example.com/hooks"])
    event_types: list[EventType] = Field(
        default_factory=list,
        max_length=MAX_EVENT_TYPES,
        description="Empty: every event type.",
    )
    symbols: list[SymbolText] | None = Field(
        default=None,
        max_length=MAX_SYMBOLS,
        description=f"null (or []): every symbol. At most {MAX_SYMBOLS}.",
    )
    universe: UniverseText | None = None
    rule: SubscriptionRule | None = Field(default=None, description="null: the default sma 50/200.")
    description: StoredText | None = Field(default=None, max_length=500)
    format: WebhookFormat = Field(default=WebhookFormat.standard, description=FORMAT_DESCRIPTION)
    enabled: StrictBool = True

    _clean_symbols = field_validator("symbols")(_symbols)


class SubscriptionPatch(BaseModel):
    """Only the fields given are changed; ``rule: null`` returns to the default rule."""

    model_config = ConfigDict(extra="forbid")

    url: StoredText | None = Field(default=None, min_length=8, max_length=2048)
    event_types: list[EventType] | None = Field(default=None, max_length=MAX_EVENT_TYPES)
    symbols: list[SymbolText] | None = Field(default=None, max_length=MAX_SYMBOLS)
    universe: UniverseText | None = Field(default=None, description="null: every symbol.")
    rule: SubscriptionRule | None = None
    description: StoredText | None = Field(default=None, max_length=500)
    format: WebhookFormat | None = None
    enabled: StrictBool | None = None

    _clean_symbols = field_validator("symbols")(_symbols)


class SubscriptionOut(BaseModel):
    id: int
    url: str
    event_types: list[EventType]
    symbols: list[str] | None
    universe: str | None
    rule: SubscriptionRule | None
    description: str | None
    format: WebhookFormat
    enabled: bool
    disabled_reason: str | None
    failing_since: UtcDatetime | None
    previous_secret_expires_at: UtcDatetime | None
    created_at: UtcDatetime
    updated_at: UtcDatetime


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="Shown once: store it to verify signatures.")


class SubscriptionList(BaseModel):
    subscriptions: list[SubscriptionOut]


class SecretOut(BaseModel):
    secret: str = Field(description="Shown once. The previous secret signs too until:")
    previous_secret_expires_at: UtcDatetime


class AttemptOut(BaseModel):
    attempted_at: UtcDatetime
    status_code: int | None
    latency_ms: float
    error_class: str | None
    response_excerpt: str | None
    next_attempt_at: UtcDatetime | None


class DeliveryOut(BaseModel):
    id: int
    event_id: str
    event_type: EventType
    status: DeliveryStatus
    attempt_count: int
    next_attempt_at: UtcDatetime | None
    created_at: UtcDatetime
    finished_at: UtcDatetime | None
    last_status: int | None
    last_error: str | None
    attempts: list[AttemptOut]


class DeliveryList(BaseModel):
    deliveries: list[DeliveryOut]


class ReplayIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: IsoDate = Field(description="First session (inclusive).")
    until: IsoDate | None = Field(default=None, description="Last session (inclusive); none: all.")

    @model_validator(mode="after")
    def _ordered(self) -> ReplayIn:
        if self.until is not None and self.until < self.since:
            raise ValueError("until must not be before since")
        return self


class Enqueued(BaseModel):
    deliveries: int
    event_id: str | None = None

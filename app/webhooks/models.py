"""Subscriptions and the outbox (one delivery per event and subscription, its attempts)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import ApiKey
from app.db.base import Base
from app.signals.models import Event

# SQLite has no 64-bit autoincrement alias other than INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always aware UTC in Python (SQLite stores it naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


PENDING, SUCCEEDED, FAILED, CANCELLED = "pending", "succeeded", "failed", "cancelled"


class Subscription(Base):
    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # NULL: owned by the bootstrap ADMIN_TOKEN (which has no api_keys row).
    owner_key_id: Mapped[int | None] = mapped_column(
        ForeignKey(ApiKey.id, ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2048), nullable=False)
    event_types: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    symbols: Mapped[list[str] | None] = mapped_column(JSON)
    # Matches the symbols that are members of this universe when an event is written.
    universe: Mapped[str | None] = mapped_column(String(64))
    rule_fast: Mapped[int | None] = mapped_column(Integer)
    rule_slow: Mapped[int | None] = mapped_column(Integer)
    rule_type: Mapped[str | None] = mapped_column(String(8))
    description: Mapped[str | None] = mapped_column(String(500))
    # How a delivery's body is rendered (``app.webhooks.formats``): standard, slack, discord.
    format: Mapped[str] = mapped_column(
        String(16), nullable=False, default="standard", server_default="standard"
    )
    enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(100), nullable=False)
    previous_secret: Mapped[str | None] = mapped_column(String(100))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    @property
    def rule(self) -> dict[str, int | str] | None:
        """The custom rule as the API shows it (``SubscriptionOut.rule``); none: the default."""
        if self.rule_fast is None or self.rule_slow is None:
            return None
        kind = "ema" if self.rule_type == "ema" else "sma"
        return {"fast": self.rule_fast, "slow": self.rule_slow, "type": kind}


class Delivery(Base):
    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(
        ForeignKey("events.id", ondelete="CASCADE"), nullable=False
    )
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), nullable=False
    )
    status: Mapped[str] = mapped_column(String(16), nullable=False, default=PENDING)
    attempt_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_by: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))

    # Read only, for the delivery log (``repository.deliveries_with_attempts`` loads
    # both); anything else reading them unloaded is an error, not a query per row.
    event: Mapped[Event] = relationship(lazy="raise", viewonly=True)
    attempts: Mapped[list[DeliveryAttempt]] = relationship(
        lazy="raise", viewonly=True, order_by=lambda: DeliveryAttempt.id
    )

    __table_args__ = (
        UniqueConstraint("event_id", "subscription_id"),
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        Index("ix_deliveries_subscription", "subscription_id", "status"),
    )

    @property
    def event_type(self) -> str:
        """Its event's type (``DeliveryOut.event_type``)."""
        return self.event.type


class DeliveryAttempt(Base):
    __tablename__ = "delivery_attempts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False, index=True
    )
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    status_code: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(nullable=False)
    error_class: Mapped[str | None] = mapped_column(String(100))
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

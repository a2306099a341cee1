"""The jobs' link to the webhook outbox: enqueue new events, and the custom rules that
subscriptions ask detection to compute."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session

from app.clock import Clock
from app.signals.analysis import Rule
from app.signals.models import Event
from app.webhooks import service as webhooks

Enqueue = Callable[[Session, Sequence[Event]], int]


def enqueuer(clock: Clock) -> Enqueue:
    """Write the outbox rows of ``events`` in the caller's transaction, due now."""

    def enqueue(session: Session, events: Sequence[Event]) -> int:
        return webhooks.enqueue_for_events(session, events, now=clock())

    return enqueue


def custom_rules(session: Session) -> list[Rule]:
    """The distinct crossover rules of enabled subscriptions (besides the default)."""
    return [
        Rule(fast, slow, "ema" if kind == "ema" else "sma")
        for fast, slow, kind in sorted(webhooks.subscription_rules(session))
    ]

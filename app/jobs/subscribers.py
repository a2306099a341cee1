"""What the jobs owe webhook subscribers, as the two callbacks a job is handed: the
outbox rows of the events it writes (:func:`enqueuer`) and the custom rules that
subscriptions ask detection to compute (:func:`custom_rules`).

Whoever starts a job (``serve``, the CLI) passes them in; a job started without them
writes events that no subscriber hears of.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.clock import Clock
from app.signals.analysis import Rule
from app.signals.models import Event
from app.webhooks import service as webhooks
from app.webhooks.callbacks import Enqueue


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

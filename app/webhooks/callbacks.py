"""The types of the two callbacks through which webhooks take part in a job's
transaction, defined once for every job that takes them (polls, the watch, imports,
replays); :mod:`app.jobs.subscribers` builds them.

Light on purpose: a job's module imports these types without the webhooks service.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy.orm import Session

from app.signals.analysis import Rule
from app.signals.models import Event

#: Called with the session and the events that transaction just inserted: writes their
#: outbox rows in it (flush only, :func:`app.webhooks.service.enqueue_for_events`) and
#: returns how many.
Enqueue = Callable[[Session, Sequence[Event]], int]
#: The custom crossover rules that enabled subscriptions ask detection to compute,
#: read in the caller's session.
RulesOf = Callable[[Session], Sequence[Rule]]

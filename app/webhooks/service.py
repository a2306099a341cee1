"""Subscriptions and the outbox: services flush, the caller's transaction commits.

Matching an event to a subscription: its type must be among the subscription's event
types (empty: all), its symbol among its symbols (null: all) and, when it names a
universe, a member of that universe when the event is written (with both, the symbol
must be in the list and in the universe; a deleted universe has no members); for cross
events (``golden_cross``, ``death_cross``, ``cross_approaching``, ``cross_watch``,
``cross_watch_missed``) its rule string must
be the subscription's rule (``sma:50:200`` unless it set its own). A ``retracted`` event
carries its original's rule and type (``data.original_type``): it matches like that
original would, by symbol (and universe membership when the retraction is written)
and, when it retracts a cross, by rule; it also goes to every subscription that was
sent the event it retracts. ``test`` and ``snapshot`` events are made for one
subscription and never fanned out. Replay and snapshot read a universe's members as they
are when asked.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence, Set
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session

from app.auth.service import Identity
from app.clock import system_clock
from app.errors import Conflict, InvalidInput, NotFound
from app.market import universes
from app.market.calendar import last_closed_session
from app.signals.analysis import DEFAULT_RULE
from app.signals.models import Event
from app.signals.repository import ONE_OFF_TYPES
from app.webhooks import repository
from app.webhooks.models import PENDING, Delivery, Subscription
from app.webhooks.schemas import SubscriptionIn, SubscriptionPatch, SubscriptionRule
from app.webhooks.signing import new_secret
from app.webhooks.ssrf import Resolver, check_url

#: Event types only subscriptions of the event's rule receive (see ``matches``).
RULE_BOUND_TYPES = frozenset(
    {"golden_cross", "death_cross", "cross_approaching", "cross_watch", "cross_watch_missed"}
)
PRIVATE_TYPES = frozenset(ONE_OFF_TYPES)
#: The key of the rule a subscription without windows follows ("sma:50:200").
DEFAULT_RULE_KEY = DEFAULT_RULE.key
ROTATION_OVERLAP = timedelta(hours=24)
REPLAY_LIMIT = 10_000


@dataclass(frozen=True)
class UrlPolicy:
    resolver: Resolver
    allow_private: bool


class Target(Protocol):
    """What matching reads of a subscription (an ORM object or a plain row)."""

    @property
    def event_types(self) -> list[str]: ...
    @property
    def symbols(self) -> list[str] | None: ...
    @property
    def universe(self) -> str | None: ...
    @property
    def rule_fast(self) -> int | None: ...
    @property
    def rule_slow(self) -> int | None: ...
    @property
    def rule_type(self) -> str | None: ...


def rule_string(subscription: Target) -> str:
    if subscription.rule_fast is None or subscription.rule_slow is None:
        return DEFAULT_RULE_KEY
    return f"{subscription.rule_type or 'sma'}:{subscription.rule_fast}:{subscription.rule_slow}"


def matches(subscription: Target, event: Event, members: Set[tuple[str, str]]) -> bool:
    """Whether ``event`` is one ``subscription`` asked for (types, symbols, universe, rule).

    ``members`` holds the (universe, symbol) memberships that stand now, at least those
    of the subscription's universe and the event's symbol (:func:`universes.memberships`).
    """
    if event.type in PRIVATE_TYPES:
        return False
    if subscription.event_types and event.type not in subscription.event_types:
        return False
    if subscription.symbols is not None and event.symbol not in subscription.symbols:
        return False
    if subscription.universe is not None and (subscription.universe, event.symbol) not in members:
        return False
    return not _rule_bound(event) or event.rule == rule_string(subscription)


def _rule_bound(event: Event) -> bool:
    """Whether only subscriptions of the event's rule want it: a cross, or the
    retraction of one (it carries the original's rule)."""
    if event.type == "retracted":
        return event.data.get("original_type") in RULE_BOUND_TYPES
    return event.type in RULE_BOUND_TYPES


def enqueue_for_events(
    session: Session, events: Sequence[Event], *, now: datetime | None = None
) -> int:
    """Write one pending delivery per (live event, matching enabled subscription).

    Runs inside the caller's transaction (flush only): the detection that stores the
    events and the outbox rows commit together. Non-live events are skipped (replays
    are explicit). ``now`` (default: the system clock) is when they become due.
    Returns the number of delivery rows written.
    """
    now = now or system_clock()
    live = [event for event in events if event.live and event.type not in PRIVATE_TYPES]
    if not live:
        return 0
    session.flush()
    subscriptions = repository.enabled_targets(session)
    if not subscriptions:
        return 0
    event_ids = [event.id for event in live]
    existing = repository.existing_pairs(session, event_ids)
    retracted = repository.originals_of(
        session, [event.id for event in live if event.type == "retracted"]
    )
    sent_originals = repository.existing_pairs(
        session, [original for ids in retracted.values() for original in ids]
    )
    # Membership as it stands in this transaction: when the events are written.
    members = universes.memberships(
        session,
        {s.universe for s in subscriptions if s.universe is not None},
        {event.symbol for event in live},
    )
    rows: list[tuple[str, int]] = []
    for event in live:
        originals = retracted.get(event.id, [])
        for subscription in subscriptions:
            key = (event.id, subscription.id)
            if key in existing:
                continue
            wanted = matches(subscription, event, members) or any(
                (original, subscription.id) in sent_originals for original in originals
            )
            if wanted:
                rows.append(key)
    repository.insert_deliveries(session, rows, now)
    if rows:
        repository.mark_outbox_dirty(session)
    return len(rows)


def subscription_rules(session: Session) -> set[tuple[int, int, str]]:
    """Distinct custom (fast, slow, type) rules of enabled subscriptions, for detection."""
    return repository.distinct_rules(session)


def get_owned(session: Session, identity: Identity, subscription_id: int) -> Subscription:
    """The caller's subscription; another key's is reported as missing (404)."""
    found = repository.get_subscription(session, identity.key_id, subscription_id)
    if found is None:
        raise NotFound(f"no webhook subscription {subscription_id}")
    return found


def create_subscription(
    session: Session, identity: Identity, data: SubscriptionIn, *, now: datetime, urls: UrlPolicy
) -> tuple[Subscription, str]:
    """Store a subscription; returns it and its secret (shown once)."""
    check_url(data.url, resolver=urls.resolver, allow_private=urls.allow_private)
    secret = new_secret()
    subscription = Subscription(
        owner_key_id=identity.key_id,
        url=data.url,
        event_types=list(data.event_types),
        symbols=data.symbols,
        universe=_existing_universe(session, data.universe),
        description=data.description,
        format=data.format.value,
        enabled=data.enabled,
        secret=secret,
        created_at=now,
        updated_at=now,
    )
    _set_rule(subscription, data.rule)
    session.add(subscription)
    session.flush()
    return subscription, secret


def _existing_universe(session: Session, name: str | None) -> str | None:
    """The canonical name of an existing universe (422 when there is none by that name)."""
    if name is None:
        return None
    try:
        return universes.existing(session, name)
    except NotFound:
        raise InvalidInput(
            f"unknown universe {name.strip().lower()!r}: create it first "
            "(PUT /v1/universes/{name} or crosswatch universe import)"
        ) from None


def _set_rule(subscription: Subscription, rule: SubscriptionRule | None) -> None:
    subscription.rule_fast = rule.fast if rule else None
    subscription.rule_slow = rule.slow if rule else None
    subscription.rule_type = rule.type if rule else None


def check_patch_url(patch: SubscriptionPatch, urls: UrlPolicy) -> None:
    """Validate a patch: no null format, and its new URL (blocking: resolves the host).
    Call it before the write transaction's first statement: on SQLite that takes the
    write lock."""
    if "format" in patch.model_fields_set and patch.format is None:
        raise InvalidInput("format cannot be null: standard, slack or discord")
    if "url" in patch.model_fields_set:
        if patch.url is None:
            raise InvalidInput("url cannot be null")
        check_url(patch.url, resolver=urls.resolver, allow_private=urls.allow_private)


def update_subscription(
    session: Session, subscription: Subscription, patch: SubscriptionPatch, *, now: datetime
) -> Subscription:
    """Apply ``patch``; its URL must have passed ``check_patch_url``."""
    given = patch.model_fields_set
    if "url" in given and patch.url is not None:
        subscription.url = patch.url
    if "event_types" in given:
        subscription.event_types = list(patch.event_types or [])
    if "symbols" in given:
        subscription.symbols = patch.symbols
    if "universe" in given:
        subscription.universe = _existing_universe(session, patch.universe)
    if "rule" in given:
        _set_rule(subscription, patch.rule)
    if "description" in given:
        subscription.description = patch.description
    if "format" in given and patch.format is not None:
        subscription.format = patch.format.value
    if "enabled" in given and patch.enabled is not None:
        if patch.enabled and not subscription.enabled:
            subscription.disabled_reason = None
            subscription.failing_since = None
        elif not patch.enabled and subscription.enabled:
            subscription.disabled_reason = "disabled by its owner"
            repository.cancel_pending(session, [subscription.id], now)
        subscription.enabled = patch.enabled
    subscription.updated_at = now
    session.flush()
    return subscription


def rotate_secret(session: Session, subscription: Subscription, *, now: datetime) -> str:
    """A new secret; the old one keeps signing alongside it for 24 h."""
    secret = new_secret()
    subscription.previous_secret = subscription.secret
    subscription.previous_secret_expires_at = now + ROTATION_OVERLAP
    subscription.secret = secret
    subscription.updated_at = now
    session.flush()
    return secret


def _require_enabled(subscription: Subscription) -> None:
    if not subscription.enabled:
        reason = subscription.disabled_reason or "disabled"
        raise Conflict(f"subscription {subscription.id} is disabled ({reason}); enable it first")


def retry_delivery(
    session: Session, subscription: Subscription, delivery_id: int, *, now: datetime
) -> Delivery:
    """Make one delivery due now (one more attempt; its attempt log is kept)."""
    _require_enabled(subscription)
    delivery = repository.get_delivery(session, subscription.id, delivery_id)
    if delivery is None:
        raise NotFound(f"no delivery {delivery_id} for subscription {subscription.id}")
    if delivery.lease_until is not None and delivery.lease_until > now:
        raise Conflict(f"delivery {delivery_id} is being attempted right now")
    delivery.status = PENDING
    delivery.next_attempt_at = now
    delivery.finished_at = None
    session.flush()
    repository.mark_outbox_dirty(session)
    return delivery


def single_event(
    session: Session,
    subscription: Subscription,
    *,
    event_type: str,
    data: dict[str, Any],
    now: datetime,
) -> Event:
    """Store a one-off event (``test``, ``snapshot``) with a fresh id and its delivery.

    Its session is the newest closed one at ``now`` (what a snapshot describes), not
    the calendar date: on a weekend or before the close, today is no session yet.
    """
    _require_enabled(subscription)
    event = Event(
        id="evt_" + secrets.token_hex(12),
        type=event_type,
        symbol="*",
        session=last_closed_session(now),
        rule=event_type,
        live=False,
        data=data,
        created_at=now,
    )
    session.add(event)
    session.flush()
    repository.insert_deliveries(session, [(event.id, subscription.id)], now)
    repository.mark_outbox_dirty(session)
    return event


def snapshot_data(session: Session, subscription: Subscription) -> dict[str, Any]:
    """The current regime of the subscription's symbols, from the newest stored cross.

    Limitation: the regime is read from cross events, so a symbol with no cross in the
    store (e.g. its history starts inside a regime) is absent.
    """
    rule = rule_string(subscription)
    crosses = repository.latest_crosses(session, rule, _symbols_of(session, subscription))
    return {
        "rule": rule,
        "regimes": [
            {
                "symbol": event.symbol,
                "regime": "golden" if event.type == "golden_cross" else "death",
                "since_session": event.session.isoformat(),
                "cross_event_id": event.id,
            }
            for event in crosses
        ],
    }


def replay(
    session: Session,
    subscription: Subscription,
    since: date,
    until: date | None,
    *,
    now: datetime,
) -> int:
    """(Re)deliver the stored events matching the subscription in a session range."""
    _require_enabled(subscription)
    symbols = _symbols_of(session, subscription)
    candidates = repository.events_in_range(
        session,
        types=[t for t in subscription.event_types if t not in PRIVATE_TYPES],
        symbols=symbols,
        since=since,
        until=until,
        limit=REPLAY_LIMIT + 1,
    )
    if len(candidates) > REPLAY_LIMIT:
        raise InvalidInput(f"more than {REPLAY_LIMIT} events in that range; narrow it")
    members = _members_now(subscription, symbols)
    wanted = [event.id for event in candidates if matches(subscription, event, members)]
    existing = repository.delivery_ids_for(session, subscription.id, wanted)
    repository.reset_deliveries(session, existing.values(), now)
    repository.insert_deliveries(
        session, [(eid, subscription.id) for eid in wanted if eid not in existing], now
    )
    if wanted:
        repository.mark_outbox_dirty(session)
    return len(wanted)


def _symbols_of(session: Session, subscription: Subscription) -> list[str] | None:
    """The symbols a subscription covers now (None: all): its list, limited to its
    universe's current members when it names one (a deleted universe has none)."""
    if subscription.universe is None:
        return subscription.symbols
    if subscription.symbols is None:
        try:
            return universes.members(session, subscription.universe)
        except NotFound:
            return []
    found = universes.memberships(session, [subscription.universe], subscription.symbols)
    return sorted(symbol for _universe, symbol in found)


def _members_now(
    subscription: Subscription, symbols: Collection[str] | None
) -> set[tuple[str, str]]:
    """``symbols`` (read by :func:`_symbols_of`) as the memberships :func:`matches` takes."""
    if subscription.universe is None or symbols is None:
        return set()
    return {(subscription.universe, symbol) for symbol in symbols}

"""``/v1/webhooks``: subscriptions, their delivery log, retry, test, replay, snapshot.

Every route needs an API key; a key sees only its own subscriptions (others are 404).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response

from app.auth.deps import RequireKey
from app.web.deps import ReadUnit, ServicesDep, WriteUnit
from app.web.problems import problem_responses
from app.webhooks import repository, service
from app.webhooks.models import Subscription
from app.webhooks.schemas import (
    DeliveryList,
    DeliveryStatus,
    Enqueued,
    ReplayIn,
    SecretOut,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionList,
    SubscriptionOut,
    SubscriptionPatch,
)
from app.webhooks.ssrf import Resolver, system_resolver

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], responses=problem_responses(401))


def get_resolver() -> Resolver:
    """The DNS resolver for URL checks (tests override this dependency)."""
    return system_resolver


ResolverDep = Annotated[Resolver, Depends(get_resolver)]
# Ids are positive and as wide as their columns (subscriptions: INTEGER, deliveries:
# BIGINT on PostgreSQL): a larger one is a bad id (422), not an overflow in the store (500).
SubscriptionId = Annotated[int, Path(ge=1, le=2**31 - 1)]
DeliveryId = Annotated[int, Path(ge=1, le=2**63 - 1)]


def _policy(services: ServicesDep, resolver: Resolver) -> service.UrlPolicy:
    return service.UrlPolicy(
        resolver=resolver, allow_private=services.settings.webhook_allow_private
    )


def _out(subscription: Subscription) -> SubscriptionOut:
    return SubscriptionOut.model_validate(subscription, from_attributes=True)


@router.post("", status_code=201, response_model=SubscriptionCreated)
def create(
    body: SubscriptionIn,
    identity: RequireKey,
    unit: WriteUnit,
    services: ServicesDep,
    resolver: ResolverDep,
) -> SubscriptionCreated:
    """Subscribe a URL. The signing secret is in this response only."""
    with unit.begin() as session:
        subscription, secret = service.create_subscription(
            session, identity, body, now=services.clock(), urls=_policy(services, resolver)
        )
        return SubscriptionCreated(**_out(subscription).model_dump(), secret=secret)


@router.get("", response_model=SubscriptionList)
def list_(identity: RequireKey, unit: ReadUnit) -> SubscriptionList:
    with unit.begin() as session:
        rows = repository.list_subscriptions(session, identity.key_id)
        return SubscriptionList(subscriptions=[_out(row) for row in rows])


@router.get("/{subscription_id}", response_model=SubscriptionOut)
def read(subscription_id: SubscriptionId, identity: RequireKey, unit: ReadUnit) -> SubscriptionOut:
    with unit.begin() as session:
        return _out(service.get_owned(session, identity, subscription_id))


@router.patch("/{subscription_id}", response_model=SubscriptionOut)
def update(
    subscription_id: SubscriptionId,
    body: SubscriptionPatch,
    identity: RequireKey,
    unit: WriteUnit,
    services: ServicesDep,
    resolver: ResolverDep,
) -> SubscriptionOut:
    # Resolve before the transaction's first statement: no DNS wait under the write lock.
    service.check_patch_url(body, _policy(services, resolver))
    with unit.begin() as session:
        subscription = service.get_owned(session, identity, subscription_id)
        updated = service.update_subscription(session, subscription, body, now=services.clock())
        return _out(updated)


@router.delete("/{subscription_id}", status_code=204)
def delete(subscription_id: SubscriptionId, identity: RequireKey, unit: WriteUnit) -> Response:
    """Delete the subscription with its pending deliveries and delivery log."""
    with unit.begin() as session:
        session.delete(service.get_owned(session, identity, subscription_id))
        return Response(status_code=204)


@router.post("/{subscription_id}/rotate-secret", response_model=SecretOut)
def rotate_secret(
    subscription_id: SubscriptionId,
    identity: RequireKey,
    unit: WriteUnit,
    services: ServicesDep,
) -> SecretOut:
    """A new secret, shown once; the previous one keeps signing alongside for 24 h."""
    with unit.begin() as session:
        subscription = service.get_owned(session, identity, subscription_id)
        secret = service.rotate_secret(session, subscription, now=services.clock())
        expires = subscription.previous_secret_expires_at
        assert expires is not None
        return SecretOut(secret=secret, previous_secret_expires_at=expires)


@router.get("/{subscription_id}/deliveries", response_model=DeliveryList)
def deliveries(
    subscription_id: SubscriptionId,
    identity: RequireKey,
    unit: ReadUnit,
    status: DeliveryStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> DeliveryList:
    """The newest deliveries first, each with its attempts."""
    with unit.begin() as session:
        subscription = service.get_owned(session, identity, subscription_id)
        rows = repository.deliveries_with_attempts(session, subscription.id, status, limit)
        return DeliveryList.model_validate({"deliveries": rows}, from_attributes=True)


@router.post("/{subscription_id}/deliveries/{delivery_id}/retry", status_code=202)
def retry(
    subscription_id: SubscriptionId,
    delivery_id: DeliveryId,
    identity: RequireKey,
    unit: WriteUnit,
    services: ServicesDep,
) -> Enqueued:
    """Attempt this delivery again now."""
    with unit.begin() as session:
        subscription = service.get_owned(session, identity, subscription_id)
        delivery = service.retry_delivery(session, subscription, delivery_id, now=services.clock())
        return Enqueued(deliveries=1, event_id=delivery.event_id)


@router.post("/{subscription_id}/test", status_code=202)
def test(
    subscription_id: SubscriptionId,
    identity: RequireKey,
    unit: WriteUnit,
    services: ServicesDep,
) -> Enqueued:
    """Send a signed ``test`` event (a fresh id) to this subscription."""
    with unit.begin() as session:
        subscription = service.get_owned(session, identity, subscription_id)
        event = service.single_event(
            session,
            subscription,
            event_type="test",
            data={"message": "a test event from Crosswatch", "subscription_id": subscription.id},
            now=services.clock(),
        )
        return Enqueued(deliveries=1, event_id=event.id)


@router.post("/{subscription_id}/replay", status_code=202)
def replay(
    subscription_id: SubscriptionId,
    body: ReplayIn,
    identity: RequireKey,
    unit: WriteUnit,
    services: ServicesDep,
) -> Enqueued:
    """Deliver again the stored events of this subscription's filter in a session range.

    Events keep their ids (so ``webhook-id`` too); a delivery that existed is reset.
    """
    with unit.begin() as session:
        subscription = service.get_owned(session, identity, subscription_id)
        count = service.replay(session, subscription, body.since, body.until, now=services.clock())
        return Enqueued(deliveries=count)


@router.post("/{subscription_id}/snapshot", status_code=202)
def snapshot(
    subscription_id: SubscriptionId,
    identity: RequireKey,
    unit: WriteUnit,
    services: ServicesDep,
) -> Enqueued:
    """Send one ``snapshot`` event: the current regime of each subscribed symbol."""
    with unit.begin() as session:
        subscription = service.get_owned(session, identity, subscription_id)
        event = service.single_event(
            session,
            subscription,
            event_type="snapshot",
            data=service.snapshot_data(session, subscription),
            now=services.clock(),
        )
        return Enqueued(deliveries=1, event_id=event.id)

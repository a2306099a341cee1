"""Request dependencies for authentication: ``RequireKey`` and ``AdminKey``.

``Authorization: Bearer <key>``; a missing, unknown or revoked key is a 401
problem+json with ``WWW-Authenticate: Bearer``. The key is looked up in a read of its
own, in a turn at the store (``app.web.deps.StoreGate``), before the endpoint's work.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth.service import Identity, authenticate
from app.errors import CrosswatchError
from app.web.deps import Services, ServicesDep, StoreWaitDep


class Unauthorized(CrosswatchError):
    status = 401
    title = "Unauthorized"
    headers = {"WWW-Authenticate": "Bearer"}  # noqa: RUF012  (read-only class constant)


class Forbidden(CrosswatchError):
    status = 403
    title = "Forbidden"


# Declares the bearer scheme in the OpenAPI description (the Authorize button, and
# generated clients that know a key is needed); answering 401 stays ours (problem+json).
bearer = HTTPBearer(
    scheme_name="ApiKey",
    description="An API key (`crosswatch keys create`) or the admin token",
    auto_error=False,
)


async def require_key(
    services: ServicesDep,
    wait: StoreWaitDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Identity:
    if not authorization:
        raise Unauthorized("an API key is required: Authorization: Bearer <key>")
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token:
        raise Unauthorized("the Authorization header must be: Bearer <key>")
    identity = await services.gate.run(_look_up, services, token, wait=wait)
    if identity is None:
        raise Unauthorized("the API key is unknown or revoked")
    return identity


def _look_up(services: Services, token: str) -> Identity | None:
    with services.db.transaction(write=False) as session:
        return authenticate(session, token, admin_token=services.settings.admin_token)


async def require_admin(identity: Annotated[Identity, Depends(require_key)]) -> Identity:
    if not identity.admin:
        raise Forbidden("this needs an admin key")
    return identity


RequireKey = Annotated[Identity, Depends(require_key)]
AdminKey = Annotated[Identity, Depends(require_admin)]

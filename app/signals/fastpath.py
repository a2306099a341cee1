"""Cached signal bodies answered before routing.

``GET /v1/signals`` and ``GET /v1/signals/{symbol}`` without a query string (the
default rule) are the hottest reads, and their bodies are already rendered and held by
the signal book. This pure ASGI middleware hands such a body out directly, skipping
routing and parameter validation (half of the per-symbol route's cost); anything else,
or a body not cached (yet, or any more), goes on to the app unchanged, so the routes
stay the single source of truth. The cache keys are the routes' own
(:func:`app.signals.router.list_key`, :func:`~app.signals.router.signal_key`), and the
matched route is put in the scope so request metrics label it by its template.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from app.db.engine import Database
from app.signals import service
from app.signals.analysis import DEFAULT_RULE
from app.signals.book import SignalBook
from app.signals.router import list_key, signal_key
from app.signals.router import router as signals_router
from app.signals.schemas import SignalList

LIST_PATH = "/v1/signals"
ONE_PREFIX = "/v1/signals/"
ONE_TEMPLATE = "/v1/signals/{symbol}"


class CachedSignals:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: dict[str, Any] = {
            route.path: route
            for route in signals_router.routes
            if isinstance(route, APIRoute)
            and route.path in (LIST_PATH, ONE_TEMPLATE)
            and "GET" in (route.methods or ())
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and not scope["query_string"]:
            body = self._cached(scope)
            if body is not None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-length", str(len(body)).encode()),
                            (b"content-type", b"application/json"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _cached(self, scope: Scope) -> bytes | None:
        path: str = scope["path"]
        app = scope.get("app")
        state = getattr(app, "state", None)
        book: SignalBook | None = getattr(state, "signal_book", None)
        services = getattr(state, "services", None)
        if book is None or services is None:
            return None
        now = services.clock()
        if path == LIST_PATH:
            key = list_key(book, now)
        elif path.startswith(ONE_PREFIX) and "/" not in path[len(ONE_PREFIX) :]:
            name = service.normalise(path[len(ONE_PREFIX) :])
            if not name:
                return None
            key = signal_key(book, now, name, DEFAULT_RULE)
        else:
            return None
        # Never the one to verify: a request that must check the store goes on to
        # the route, which does.
        body = book.cached_body(key, verify=False)
        if body is not None:
            route = self._route(path)
            if route is None:
                return None
            scope["route"] = route
        return body

    def _route(self, path: str) -> Any:
        """The route that would have served ``path`` (it labels the request's metrics)."""
        return self._routes.get(LIST_PATH if path == LIST_PATH else ONE_TEMPLATE)


def warm(book: SignalBook, db: Database, now: datetime) -> None:
    """Compute ``book``'s snapshot and render the ``/v1/signals`` body into it, as the
    route renders it, then breadth's arrays: the serving process does this before it
    says it is ready."""
    with db.transaction(write=False) as session:
        snapshot = book.snapshot(session)
        key = list_key(book, now)
        if key not in snapshot.bodies:
            signals = service.all_signals(book, session, now)
            body = SignalList.model_validate({"signals": signals}).model_dump_json().encode()
            snapshot.bodies[key] = body
        snapshot.prepare_breadth()

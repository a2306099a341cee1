"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import problems
from app.api.deps import Services
from app.clock import Clock, system_clock
from app.db.engine import Database
from app.settings import Settings, get_settings
from app.signals import router as signals_router
from app.signals.service import SignalBook
from app.status import router as status_router

DESCRIPTION = """Golden-cross technical alerts: moving-average crosses, trigger closes,
drawdowns and turns of the Russell 2000, S&P 500, Nasdaq and any symbol you track.
Symbols in paths are URL-encoded: `^RUT` is `%5ERUT`. Errors are RFC 9457
`application/problem+json`."""


def create_app(
    settings: Settings | None = None,
    *,
    db: Database | None = None,
    clock: Clock = system_clock,
) -> FastAPI:
    """Build the app. The store is opened in the lifespan, never at import."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or get_settings()
        owned = db is None
        database = db or Database(resolved.database_url)
        app.state.services = Services(settings=resolved, db=database, clock=clock)
        app.state.signal_book = SignalBook()
        try:
            yield
        finally:
            if owned:
                database.dispose()

    app = FastAPI(
        title="Crosswatch",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    problems.install(app)
    app.include_router(status_router.router)
    app.include_router(signals_router.router)
    return app

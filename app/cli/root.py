"""What every ``crosswatch`` command runs in: the configured store, migrated, named on
stderr first; a domain, setting or store error as one line on stderr and exit 1."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from app.clock import system_clock
from app.db.engine import Database
from app.db.migrate import upgrade
from app.errors import CrosswatchError
from app.logs import configure
from app.settings import Settings, SettingsError, get_settings
from app.webhooks.callbacks import Enqueue


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


@contextmanager
def store(*, migrate: bool = True) -> Iterator[tuple[Settings, Database]]:
    """Settings and a migrated store; domain and setting errors become one line."""
    try:
        settings = get_settings()
        db = Database(settings.database_url)
    except SettingsError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"store: {store_name(settings)}", err=True)
    # Warnings (a symbol's failed poll) as they happen, redacted; the servers log more.
    configure(settings, at_least=logging.WARNING)
    try:
        if migrate:
            upgrade(db.engine)
        yield settings, db
    except CrosswatchError as exc:
        raise fail(exc.detail) from None
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        raise fail(f"the store failed: {reason}") from None
    finally:
        db.dispose()


@contextmanager
def quiet_read() -> Iterator[Session]:
    """A read transaction on the migrated store for ``screen`` and ``brief``, which print
    only their result: no store line, no logging set up; a domain or setting error is
    one line, a store error named by its type."""
    try:
        settings = get_settings()
        db = Database(settings.database_url)
    except SettingsError as exc:
        raise fail(str(exc)) from None
    try:
        upgrade(db.engine)
        with db.transaction(write=False) as session:
            yield session
    except CrosswatchError as exc:
        raise fail(exc.detail) from None
    except SQLAlchemyError as exc:
        raise fail(f"the store failed: {type(exc).__name__}") from None
    finally:
        db.dispose()


def enqueue() -> Enqueue:
    """The outbox writer: new live events get their delivery rows in the same transaction."""
    from app.jobs.subscribers import enqueuer

    return enqueuer(system_clock)


def run_until_signal(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)`` until SIGINT or SIGTERM sets ``stop``."""
    import signal

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await main(stop)

    asyncio.run(runner())


def store_name(settings: Settings) -> str:
    """The store's URL, password hidden, a SQLite file as its absolute path; and whether
    it is the default (a file under the current folder, so another folder is another
    store)."""
    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    database = url.database or ""
    if url.get_backend_name() == "sqlite" and not database.startswith("file:"):
        url = url.set(database=str(Path(database).resolve()))
    name = url.render_as_string(hide_password=True)
    if "database_url" not in settings.model_fields_set:
        name += " (the default: data/crosswatch.db under the current folder; "
        name += "CROSSWATCH_DATABASE_URL chooses another)"
    return name

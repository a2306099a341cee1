"""Schema management: ``alembic upgrade head`` and the "are migrations current?" check."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text

MIGRATION_LOCK = 0x43574D4947  # "CWMIG"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"
VERSION_TABLE = "alembic_version"


def alembic_config(url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(PROJECT_ROOT / "alembic"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the store to the newest migration (idempotent)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Roles starting together (api, scheduler, workers) migrate one at a time.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@lru_cache(maxsize=1)
def head_revisions() -> frozenset[str]:
    """The newest revisions of the migration scripts (read once: they do not change
    while the process runs)."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return frozenset(script.get_heads())


def current_revisions(connection: Connection) -> set[str]:
    """The store's revisions, read with a plain SELECT: Alembic's ``MigrationContext``
    would log a line on every call, and readiness is probed every few seconds."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return set()
    return set(connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars())


def revision_problem(current: Iterable[str]) -> str | None:
    """None when ``current`` is the newest migration, else why not (in words)."""
    found, heads = set(current), head_revisions()
    if found == heads:
        return None
    if not found:
        return "the store has no schema yet: run `crosswatch migrate`"
    return (
        f"the store is at migration {', '.join(sorted(found))}, "
        f"the code expects {', '.join(sorted(heads))}: run `crosswatch migrate`"
    )


def pending_reason(engine: Engine) -> str | None:
    """None when the store is at the newest migration, else why not (in words)."""
    with engine.connect() as connection:
        return revision_problem(current_revisions(connection))

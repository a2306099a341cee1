"""Schema management: ``alembic upgrade head`` and the "are migrations current?" check."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

MIGRATION_LOCK = 0x43574D4947  # "CWMIG"
PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_INI = PROJECT_ROOT / "alembic.ini"


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


def head_revisions() -> set[str]:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return set(script.get_heads())


def pending_reason(engine: Engine) -> str | None:
    """None when the store is at the newest migration, else why not (in words)."""
    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    heads = head_revisions()
    if current == heads:
        return None
    if not current:
        return "the store has no schema yet: run `crosswatch migrate`"
    return (
        f"the store is at migration {', '.join(sorted(current))}, "
        f"the code expects {', '.join(sorted(heads))}: run `crosswatch migrate`"
    )

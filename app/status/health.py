"""Liveness and readiness: is the process up, and can it serve from a current store?"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from app.db.engine import Database
from app.db.migrate import pending_reason


def readiness_problem(db: Database) -> str | None:
    """None when the store answers and is at the newest migration, else the reason."""
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return pending_reason(db.engine)
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        return f"the store is unreachable: {reason}"

"""SQL for API keys."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import ApiKey


def active_key(session: Session, key_hash: str) -> ApiKey | None:
    """The key stored under ``key_hash`` unless it has been revoked."""
    return session.scalar(
        select(ApiKey).where(ApiKey.key_hash == key_hash, ApiKey.revoked_at.is_(None))
    )

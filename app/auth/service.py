"""API keys: creation (plaintext shown once, SHA-256 stored) and bearer authentication.

A key is ``cw_`` + 43 URL-safe characters (256 random bits), so a plain SHA-256 is a
sufficient one-way hash: there is nothing to brute-force. The ``ADMIN_TOKEN`` setting
bootstraps access: a bearer equal to it is an admin identity with no ``api_keys`` row
(its subscriptions have a NULL owner).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.auth import repository
from app.auth.models import ApiKey
from app.clock import Clock, system_clock
from app.db.engine import Database
from app.settings import Settings

KEY_PREFIX = "cw_"
SHOWN_PREFIX_LENGTH = 11


@dataclass(frozen=True)
class Identity:
    """Who is calling. ``key_id`` is None for the bootstrap ADMIN_TOKEN."""

    key_id: int | None
    name: str
    admin: bool


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_key(
    session: Session, name: str, admin: bool = False, *, clock: Clock = system_clock
) -> tuple[ApiKey, str]:
    """Store a new key (flush only) and return its row and the plaintext, shown once."""
    if not name.strip():
        raise ValueError("a key needs a name")
    plaintext = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        name=name.strip(),
        prefix=plaintext[:SHOWN_PREFIX_LENGTH],
        key_hash=hash_key(plaintext),
        admin=admin,
        created_at=clock(),
    )
    session.add(row)
    session.flush()
    return row, plaintext


def authenticate(session: Session, token: str, *, admin_token: str | None) -> Identity | None:
    """The identity a bearer token stands for, or None when it is unknown or revoked."""
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Identity(key_id=None, name="admin-token", admin=True)
    if not token.startswith(KEY_PREFIX):
        return None
    row = repository.active_key(session, hash_key(token))
    if row is None:
        return None
    return Identity(key_id=row.id, name=row.name, admin=row.admin)


def keys_create(settings: Settings, name: str, admin: bool = False) -> str:
    """CLI hook for ``crosswatch keys create``: store a key, return the plaintext once.

    The caller migrates the store first (as every CLI command does).
    """
    db = Database(settings.database_url)
    try:
        with db.transaction() as session:
            _row, plaintext = create_key(session, name, admin)
        return plaintext
    finally:
        db.dispose()

"""Standard Webhooks signing: pure functions over the exact bytes that are sent.

A secret is ``whsec_`` + base64 of 24 random bytes; the HMAC key is the decoded bytes.
The signature of a message is ``v1,`` + base64(HMAC-SHA256(key, f"{id}.{ts}.{body}")).
While a rotated-out secret is still valid, both signatures are sent space-separated, so
a receiver that knows either secret verifies the message (the spec allows several).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime
from functools import lru_cache

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 24


def new_secret() -> str:
    """A fresh signing secret, shown to the subscriber once."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret (the base64-decoded part after the prefix)."""
    encoded = secret.removeprefix(SECRET_PREFIX)
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4))


def sign(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``body`` for message ``msg_id`` at ``timestamp``."""
    mac = _keyed(key).copy()
    mac.update(b"%s.%d.%s" % (msg_id.encode(), timestamp, body))
    return "v1," + base64.b64encode(mac.digest()).decode()


@lru_cache(maxsize=4096)
def _keyed(key: bytes) -> hmac.HMAC:
    # Keying HMAC once per secret and copying it per message is cheaper than a
    # one-shot HMAC, which also releases the GIL on every call (the worker signs
    # thousands of messages a second on its event loop).
    return hmac.new(key, digestmod=hashlib.sha256)


def signature_header(keys: list[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: one signature per valid key, space-separated."""
    return " ".join(sign(key, msg_id, timestamp, body) for key in keys)


def webhook_headers(keys: list[bytes], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """All headers of one attempt: the signed id, timestamp and signatures."""
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(keys, msg_id, timestamp, body),
    }


def signing_keys(
    secret: str, previous: str | None, previous_expires: datetime | None, now: datetime
) -> tuple[bytes, ...]:
    """The current key, plus the previous one while its 24 h overlap lasts."""
    if previous and previous_expires is not None and now < previous_expires:
        return secret_key(secret), secret_key(previous)
    return (secret_key(secret),)

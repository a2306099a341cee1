"""The fault tests reuse the real local webhook receiver of the webhooks tests."""

from tests.webhooks.conftest import receiver

__all__ = ["receiver"]

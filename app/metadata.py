"""All tables, imported so that Alembic and the tests see one complete metadata.

A composition module beside ``app.api.app``, above every domain whose models it loads:
``app.db`` stays below them.
"""

from app.auth import models as auth_models
from app.db.base import Base
from app.market import models as market_models
from app.signals import models as signal_models
from app.webhooks import models as webhook_models

metadata = Base.metadata

__all__ = ["auth_models", "market_models", "metadata", "signal_models", "webhook_models"]

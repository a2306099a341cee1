"""All tables, imported so that Alembic and the tests see one complete metadata."""

from app.db.base import Base
from app.market import models as market_models
from app.signals import models as signal_models
from app.webhooks import models as webhook_models  # noqa: F401  (also loads app.auth.models)

metadata = Base.metadata

__all__ = ["market_models", "metadata", "signal_models"]

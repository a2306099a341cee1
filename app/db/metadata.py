"""All tables, imported so that Alembic and the tests see one complete metadata."""

from app.db.base import Base
from app.market import models as market_models
from app.signals import models as signal_models

metadata = Base.metadata

__all__ = ["market_models", "metadata", "signal_models"]

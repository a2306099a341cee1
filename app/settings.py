"""The one typed settings object (environment prefix ``CROSSWATCH_``, also ``.env``)."""

from __future__ import annotations

from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SYMBOLS = ("^RUT", "^GSPC", "^IXIC")
KNOWN_PROVIDERS = ("yahoo", "stooq", "fred", "csv")


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of the service. Lists are comma-separated in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="CROSSWATCH_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str = Field(
        default="sqlite:///data/crosswatch.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://…",
    )
    symbols: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_SYMBOLS))
    seed: bool = True
    providers: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["yahoo"])
    yahoo_base_url: str = "https://query2.finance.yahoo.com"
    stooq_base_url: str = "https://stooq.com"
    stooq_api_key: str | None = None
    fred_base_url: str = "https://api.stlouisfed.org"
    fred_api_key: str | None = None
    csv_dir: Path | None = None
    proxies: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Proxy instruments allowed as a fallback, e.g. ^RUT=IWM (never silent).",
    )
    poll_time: time = time(17, 15)
    poll_overlap_sessions: int = Field(default=5, ge=1, le=100)
    provider_timeout_seconds: float = Field(default=20.0, gt=0)
    provider_retries: int = Field(default=3, ge=0, le=10)
    bad_tick_pct: float = Field(default=25.0, gt=0)
    admin_token: str | None = None
    webhook_allow_private: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("symbols", "providers", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("symbols")
    @classmethod
    def _upper_symbols(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one symbol is required")
        return [symbol.upper() for symbol in value]

    @field_validator("providers")
    @classmethod
    def _known_providers(cls, value: list[str]) -> list[str]:
        names = [name.lower() for name in value]
        unknown = [name for name in names if name not in KNOWN_PROVIDERS]
        if unknown:
            raise ValueError(
                f"unknown provider {unknown[0]!r}; choose from {', '.join(KNOWN_PROVIDERS)}"
            )
        if not names:
            raise ValueError("at least one provider is required")
        return names

    @field_validator("proxies", mode="before")
    @classmethod
    def _proxy_pairs(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        pairs: dict[str, str] = {}
        for item in value.split(","):
            if not item.strip():
                continue
            symbol, sep, proxy = str(item).partition("=")
            if not sep or not symbol or not proxy:
                raise ValueError(f"expected SYMBOL=PROXY, got {item!r}")
            pairs[symbol.strip().upper()] = proxy.strip().upper()
        return pairs

    @field_validator("database_url")
    @classmethod
    def _supported_url(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("only sqlite:/// and postgresql+psycopg:// URLs are supported")
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            return "postgresql+psycopg://" + value.split("://", 1)[1]
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


class SettingsError(Exception):
    """A setting is invalid; the message names it in one line."""


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning a validation error into one line naming the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        message = str(error["msg"]).removeprefix("Value error, ")
        raise SettingsError(f"invalid setting CROSSWATCH_{field.upper()}: {message}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()

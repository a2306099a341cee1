"""The one typed settings object (environment prefix ``CROSSWATCH_``, also ``.env``).

Every value is checked when the settings are built, so a bad one stops start-up with
one line naming it (``load_settings``) instead of failing later in a request or a job.
"""

from __future__ import annotations

import re
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    HttpUrl,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_SYMBOLS = ("^RUT", "^GSPC", "^IXIC")
KNOWN_PROVIDERS = ("yahoo", "stooq", "fred", "csv")
#: Providers reached over the network: a bare ``PROVIDER_RATE`` number paces these.
REMOTE_PROVIDERS = ("yahoo", "stooq", "fred")
#: Requests in flight per provider, and requests per second (csv: not paced). Yahoo
#: publishes no limit and answers 429 to bursts; FRED allows 120 requests a minute;
#: Stooq's keyed CSV has a daily quota, so it is asked gently.
DEFAULT_PROVIDER_CONCURRENCY = 4
DEFAULT_PROVIDER_RATES = {"yahoo": 2.0, "stooq": 1.0, "fred": 2.0}
MAX_PROVIDER_CONCURRENCY = 64
MAX_PROVIDER_RATE = 1000.0
#: A canonical symbol: letters, digits and ``^ . = -``, at most 32 (``app.market.symbols``).
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9^][A-Z0-9.^=\-]{0,31}$")
#: XNYS's regular close (America/New_York); ``POLL_TIME`` is a delay after each close.
REGULAR_CLOSE = time(16, 0)
#: URL schemes accepted for ``DATABASE_URL``, and the driver each one is run with.
DATABASE_DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite+pysqlite",
    "postgresql+psycopg": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
}

_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


def _http_base_url(value: object) -> HttpUrl:
    """An http(s) URL with a host (providers append their paths to it)."""
    try:
        return _HTTP_URL.validate_python(value)
    except ValidationError:
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}") from None


def _symbol(value: str) -> str:
    cleaned = value.strip().upper()
    if not SYMBOL_PATTERN.fullmatch(cleaned):
        raise ValueError(f"invalid symbol {value!r}: use letters, digits and ^ . = - (at most 32)")
    return cleaned


def _blank_is_unset(value: object) -> object:
    """``CROSSWATCH_X=`` (empty) means the setting is not set."""
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _database_url(value: str) -> str:
    """SQLite or PostgreSQL through psycopg 3; ``postgresql://`` and ``postgres://``
    (what hosting providers hand out) are mapped to ``postgresql+psycopg://``."""
    supported = "use sqlite:///path/to/file.db or postgresql://user:pass@host:5432/db"
    try:
        url = make_url(value.strip())
    except ArgumentError:
        raise ValueError(f"not a database URL; {supported}") from None
    driver = DATABASE_DRIVERS.get(url.drivername)
    if driver is None:
        raise ValueError(f"unsupported scheme {url.drivername}://; {supported}")
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        raise ValueError(f"a SQLite store needs a file path; {supported}")
    return driver + "://" + value.strip().split("://", 1)[1]


def _proxy_pairs(value: object) -> object:
    """``^RUT=IWM,^GSPC=SPY`` from the environment; a mapping is kept as given."""
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


def _proxy_symbols(value: dict[str, str]) -> dict[str, str]:
    return {_symbol(symbol): _symbol(proxy) for symbol, proxy in value.items()}


BaseUrl = Annotated[HttpUrl, BeforeValidator(_http_base_url)]
DatabaseUrl = Annotated[str, AfterValidator(_database_url)]
Proxies = Annotated[
    dict[str, str], NoDecode, BeforeValidator(_proxy_pairs), AfterValidator(_proxy_symbols)
]
Secret = Annotated[str | None, BeforeValidator(_blank_is_unset)]


def _per_provider(
    value: object, defaults: dict[str, float], bare_applies_to: tuple[str, ...]
) -> dict[str, float]:
    """``4`` (for every provider in ``bare_applies_to``), ``yahoo=2,stooq=1`` (those
    only), or both (``3,stooq=1``), over ``defaults``; a mapping overrides by name."""
    merged = dict(defaults)
    if isinstance(value, dict):
        items = [(str(name), number) for name, number in value.items()]
    elif isinstance(value, str | int | float):
        items = []
        for item in str(value).split(","):
            name, sep, number = item.strip().rpartition("=")
            if sep and not name.strip():
                raise ValueError(f"expected NUMBER or PROVIDER=NUMBER, got {item.strip()!r}")
            if number.strip():
                items.append((name.strip() or "", number.strip()))
        if not items:
            raise ValueError("expected a number, or PROVIDER=NUMBER pairs")
    else:
        raise ValueError("expected a number, or PROVIDER=NUMBER pairs")
    for name, number in sorted(items, key=lambda item: item[0] != ""):  # bare number first
        try:
            parsed = float(number)
        except (TypeError, ValueError):
            raise ValueError(f"expected a number, got {number!r}") from None
        if not name:
            merged.update(dict.fromkeys(bare_applies_to, parsed))
        elif name.lower() in KNOWN_PROVIDERS:
            merged[name.lower()] = parsed
        else:
            raise ValueError(f"unknown provider {name!r}; choose from {', '.join(KNOWN_PROVIDERS)}")
    return merged


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class Settings(BaseSettings):
    """Every setting of the service. Lists are comma-separated in the environment."""

    model_config = SettingsConfigDict(
        env_prefix="CROSSWATCH_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: DatabaseUrl = Field(
        default="sqlite:///data/crosswatch.db",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://… "
        "(postgresql:// and postgres:// are run with psycopg 3)",
    )
    symbols: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_SYMBOLS))
    seed: bool = True
    providers: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["yahoo"])
    yahoo_base_url: BaseUrl = HttpUrl("https://query2.finance.yahoo.com")
    stooq_base_url: BaseUrl = HttpUrl("https://stooq.com")
    stooq_api_key: Secret = None
    fred_base_url: BaseUrl = HttpUrl("https://api.stlouisfed.org")
    fred_api_key: Secret = None
    csv_dir: Annotated[Path | None, BeforeValidator(_blank_is_unset)] = None
    proxies: Proxies = Field(
        default_factory=dict,
        description="Proxy instruments allowed as a fallback, e.g. ^RUT=IWM (never silent).",
    )
    poll_time: time = time(17, 15)
    poll_overlap_sessions: int = Field(default=5, ge=1, le=100)
    provider_timeout_seconds: float = Field(default=20.0, gt=0, allow_inf_nan=False)
    provider_retries: int = Field(default=3, ge=0, le=10)
    provider_concurrency: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=lambda: dict.fromkeys(KNOWN_PROVIDERS, DEFAULT_PROVIDER_CONCURRENCY),
        description="Requests in flight per provider: 4, or per provider yahoo=4,csv=8.",
    )
    provider_rate: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_PROVIDER_RATES),
        description="Requests per second per provider: a bare number paces yahoo, stooq "
        "and fred; yahoo=2,stooq=1 names them (csv is not paced unless named).",
    )
    bad_tick_pct: float = Field(default=25.0, gt=0, allow_inf_nan=False)
    watch_interval_minutes: int = Field(
        default=15,
        ge=0,
        le=390,  # a regular session's length: one check a session
        description="Minutes between intraday cross-watch checks during a session, "
        "from 15 minutes after the open until the close; 0 turns the watch off.",
    )
    watch_distance_pct: float = Field(
        default=3.0,
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="A symbol is watched when its newest close needs to move at most "
        "this many percent toward its trigger close to make a cross.",
    )
    admin_token: Secret = None
    webhook_allow_private: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    db_concurrency: int = Field(
        default=8,
        ge=1,
        le=16,  # the pool holds 20 connections (app.db.engine); the rest serve background work
        description="Units of request database work one API process runs at once; "
        "the other requests wait their turn.",
    )
    db_queue_seconds: float = Field(
        default=2.0,
        gt=0,
        le=30,
        allow_inf_nan=False,
        description="How long a request waits for the store in all (its turn, then on "
        "SQLite the write lock) before it is answered 503 with Retry-After.",
    )
    delivery_concurrency: int = Field(
        default=100, ge=1, description="Webhook sends in flight at once in one delivery worker."
    )
    delivery_per_endpoint: int = Field(
        default=10,
        ge=1,
        description="Deliveries one subscription holds in one worker at once (claimed or "
        "sending), so a slow receiver never delays the others.",
    )
    delivery_lease_seconds: float = Field(
        default=60.0,
        gt=0,
        allow_inf_nan=False,
        description="How long a claimed delivery stays the worker's; past it (a crashed "
        "worker) another worker may claim it.",
    )

    @field_validator("symbols", "providers", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("symbols")
    @classmethod
    def _upper_symbols(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one symbol is required")
        return [_symbol(symbol) for symbol in value]

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

    @field_validator("provider_concurrency", mode="before")
    @classmethod
    def _concurrency_per_provider(cls, value: object) -> object:
        defaults = dict.fromkeys(KNOWN_PROVIDERS, float(DEFAULT_PROVIDER_CONCURRENCY))
        merged = _per_provider(value, defaults, KNOWN_PROVIDERS)
        for name, number in merged.items():
            if not number.is_integer() or not 1 <= number <= MAX_PROVIDER_CONCURRENCY:
                raise ValueError(
                    f"{name}: expected a whole number of requests from 1 to "
                    f"{MAX_PROVIDER_CONCURRENCY}, got {number:g}"
                )
        return {name: int(number) for name, number in merged.items()}

    @field_validator("provider_rate", mode="before")
    @classmethod
    def _rate_per_provider(cls, value: object) -> object:
        merged = _per_provider(value, dict(DEFAULT_PROVIDER_RATES), REMOTE_PROVIDERS)
        for name, number in merged.items():
            if not 0 < number <= MAX_PROVIDER_RATE:  # also refuses nan
                raise ValueError(
                    f"{name}: expected requests per second above 0 and at most "
                    f"{MAX_PROVIDER_RATE:g}, got {number:g}"
                )
        return merged

    @field_validator("poll_time")
    @classmethod
    def _after_the_close(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("give a time without a UTC offset: it is New York time")
        if value < REGULAR_CLOSE:
            raise ValueError(
                f"{value:%H:%M} is before the 16:00 close; polls run after it, e.g. 17:15"
            )
        return value

    @field_validator("csv_dir")
    @classmethod
    def _existing_folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"{str(value)!r} is not a folder")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


class SettingsError(Exception):
    """A setting is invalid; the message names it in one line."""


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning a validation error into one line naming the setting.

    The line never quotes the value given for ``DATABASE_URL`` or a key or token
    (pydantic's own messages do not; ours quote only harmless values).
    """
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        field = str(error["loc"][0]) if error["loc"] else "?"
        message = str(error["msg"]).removeprefix("Value error, ")
        message = (message.strip().splitlines() or ["invalid value"])[0]
        raise SettingsError(f"invalid setting CROSSWATCH_{field.upper()}: {message}") from None
    except SourceError as exc:
        reason = (str(exc).strip().splitlines() or ["unreadable"])[0]
        raise SettingsError(f"invalid settings: {reason}") from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()

"""Every setting is checked at start-up: a bad value is one line naming it, and every
long-running command (and ``poll``) exits non-zero before doing anything."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import time
from pathlib import Path

import pytest

from app.settings import Settings, SettingsError, load_settings
from tests.conftest import ROOT, run_cli

#: For each setting, values a user could plausibly write that must be refused.
BAD_VALUES: dict[str, list[str]] = {
    "database_url": [
        "mysql://crosswatch@db/crosswatch",
        "postgresql+psycopg2://crosswatch@db/crosswatch",
        "sqlite://",
        "sqlite:///:memory:",
        "data/crosswatch.db",
    ],
    "symbols": ["^RUT,RUT$", " , "],
    "seed": ["maybe"],
    "providers": ["yahoo,bogus", ""],
    "yahoo_base_url": ["query2.finance.yahoo.com", "ftp://example.com"],
    "stooq_base_url": ["stooq"],
    "fred_base_url": ["file:///etc/passwd"],
    "csv_dir": ["/nonexistent/crosswatch-csv"],
    "proxies": ["^RUT", "^RUT=I W M"],
    "poll_time": ["09:00", "15:59", "17:15+02:00", "5pm", "24:00"],
    "poll_overlap_sessions": ["0", "101", "five"],
    "provider_timeout_seconds": ["0", "-1", "inf", "nan"],
    "provider_retries": ["-1", "11"],
    "provider_concurrency": ["0", "many", "2.5", "65", "yahoo=0", "bogus=2", ""],
    "provider_rate": ["0", "-1", "inf", "nan", "yahoo=fast", "bogus=1", "=2", "stooq=0"],
    "bad_tick_pct": ["0", "inf"],
    "webhook_allow_private": ["sometimes"],
    "log_level": ["verbose"],
    "log_format": ["xml"],
    "db_concurrency": ["0", "many"],
    "db_queue_seconds": ["0", "inf"],
    "watch_interval_minutes": ["-1", "391", "2.5", "often"],
    "watch_distance_pct": ["0", "-3", "101", "nan", "inf", "near"],
    "delivery_concurrency": ["0", "many"],
    "delivery_per_endpoint": ["0", "2.5"],
    "delivery_lease_seconds": ["0", "-1", "inf", "nan"],
}
#: Free-form secrets: any non-blank text is valid (blank means unset).
ANY_TEXT = {"stooq_api_key", "fred_api_key", "admin_token"}


def test_every_setting_has_refused_values_here() -> None:
    missing = set(Settings.model_fields) - set(BAD_VALUES) - ANY_TEXT
    assert not missing, f"add bad values for {sorted(missing)} to BAD_VALUES"


@pytest.mark.parametrize(
    ("field", "value"), [(field, value) for field, values in BAD_VALUES.items() for value in values]
)
def test_a_bad_value_is_one_line_naming_the_setting(field: str, value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(_env_file=None, **{field: value})
    message = str(refused.value)
    assert message.startswith(f"invalid setting CROSSWATCH_{field.upper()}: ")
    assert len(message.splitlines()) == 1


@pytest.mark.parametrize(
    ("given", "rates"),
    [
        (None, {"yahoo": 2.0, "stooq": 1.0, "fred": 2.0}),
        ("3", {"yahoo": 3.0, "stooq": 3.0, "fred": 3.0}),
        ("yahoo=5", {"yahoo": 5.0, "stooq": 1.0, "fred": 2.0}),
        ("stooq=0.5, 3", {"yahoo": 3.0, "stooq": 0.5, "fred": 3.0}),
        ("csv=10", {"yahoo": 2.0, "stooq": 1.0, "fred": 2.0, "csv": 10.0}),
    ],
)
def test_provider_rate_is_one_number_for_remote_providers_or_per_provider(
    given: str | None, rates: dict[str, float]
) -> None:
    overrides = {} if given is None else {"provider_rate": given}
    assert load_settings(_env_file=None, **overrides).provider_rate == rates


def test_provider_concurrency_is_one_number_or_per_provider() -> None:
    every = load_settings(_env_file=None).provider_concurrency
    assert every == {"yahoo": 4, "stooq": 4, "fred": 4, "csv": 4}
    mixed = load_settings(_env_file=None, provider_concurrency="8,yahoo=2").provider_concurrency
    assert mixed == {"yahoo": 2, "stooq": 8, "fred": 8, "csv": 8}


def test_poll_time_before_the_close_says_why() -> None:
    with pytest.raises(SettingsError, match=r"09:00 is before the 16:00 close"):
        load_settings(poll_time="09:00", _env_file=None)
    assert load_settings(poll_time="16:00", _env_file=None).poll_time == time(16, 0)
    assert load_settings(poll_time="23:59", _env_file=None).poll_time == time(23, 59)


@pytest.mark.parametrize(
    ("given", "used"),
    [
        (
            "postgres://cw:s3cret@db:5432/crosswatch",
            "postgresql+psycopg://cw:s3cret@db:5432/crosswatch",
        ),
        ("postgresql://cw@db/crosswatch", "postgresql+psycopg://cw@db/crosswatch"),
        ("postgresql+psycopg://cw@db/crosswatch", "postgresql+psycopg://cw@db/crosswatch"),
        (
            "postgresql://cw@/crosswatch?host=/run/postgresql",
            "postgresql+psycopg://cw@/crosswatch?host=/run/postgresql",
        ),
        ("sqlite:///data/crosswatch.db", "sqlite:///data/crosswatch.db"),
    ],
)
def test_postgres_urls_as_hosts_hand_them_out_run_on_psycopg(given: str, used: str) -> None:
    assert load_settings(database_url=given, _env_file=None).database_url == used


def test_the_secret_in_a_refused_url_is_not_repeated() -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings(database_url="mysql://cw:s3cret@db/crosswatch", _env_file=None)
    assert "s3cret" not in str(refused.value)


def test_lenient_spellings_are_accepted(tmp_path: Path) -> None:
    settings = load_settings(
        log_level="info",
        symbols=" ^rut , iwm ",
        proxies="^rut=iwm",
        admin_token="",
        csv_dir=str(tmp_path),
        _env_file=None,
    )
    assert settings.log_level == "INFO"
    assert settings.symbols == ["^RUT", "IWM"]
    assert settings.proxies == {"^RUT": "IWM"}
    assert settings.admin_token is None
    assert settings.csv_dir == tmp_path


COMMANDS = ("serve", "scheduler", "worker", "poll")
#: A refusal takes a second or two; a command still running after this has started.
STARTED_AFTER_SECONDS = 60


def _start(command: str, field: str, value: str, database_url: str) -> str | None:
    """Run ``command`` with one bad setting; what went wrong, or None if it was refused."""
    env = {
        **os.environ,
        "CROSSWATCH_DATABASE_URL": database_url,
        "CROSSWATCH_SEED": "false",
        f"CROSSWATCH_{field.upper()}": value,
    }
    try:
        result = subprocess.run(
            [sys.executable, "-m", "app", command],
            env=env,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=STARTED_AFTER_SECONDS,
        )
    except subprocess.TimeoutExpired:
        return f"{command} with {field}={value!r} started instead of refusing"
    lines = result.stderr.strip().splitlines()
    expected = f"error: invalid setting CROSSWATCH_{field.upper()}: "
    if result.returncode == 0 or len(lines) != 1 or not lines[0].startswith(expected):
        return f"{command} with {field}={value!r}: exit {result.returncode}, {result.stderr!r}"
    return None


def test_every_command_refuses_every_bad_setting_at_start_up(database_url: str) -> None:
    # Every setting goes through the same check (above); here each command reports it.
    cases = [(command, "poll_time", "09:00") for command in COMMANDS]
    cases += [
        ("serve", "database_url", "mysql://crosswatch@db/crosswatch"),
        ("scheduler", "csv_dir", "/nonexistent/crosswatch-csv"),
        ("worker", "proxies", "^RUT"),
        ("poll", "provider_timeout_seconds", "inf"),
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        problems = list(pool.map(lambda case: _start(*case, database_url), cases))
    assert [problem for problem in problems if problem] == []


def test_a_postgres_url_is_accepted_and_then_connected_to() -> None:
    # Port 1: nothing listens, so the URL got past the settings to the driver.
    result = run_cli("migrate", database_url="postgres://nobody@127.0.0.1:1/crosswatch")
    assert result.returncode == 1
    _store, error = result.stderr.strip().splitlines()  # the store named, then one error
    assert error.startswith("error: the store failed: "), result.stderr

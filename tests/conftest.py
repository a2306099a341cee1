"""Shared fixtures: a real, migrated store per test (SQLite file, or PostgreSQL when
``CROSSWATCH_TEST_DATABASE_URL`` is set), real data (inside the repository), and a fixed clock."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from app.db.engine import Database
from app.db.migrate import upgrade
from app.metadata import metadata
from app.settings import Settings, load_settings
from tests.support import realdata

ROOT = Path(__file__).resolve().parents[1]
GIVEN_PG_URL = os.environ.get("CROSSWATCH_TEST_DATABASE_URL")
# Under pytest-xdist (scripts/test) each worker has a database of its own, named after the
# given one and the worker ("crosswatch_test_gw0"), created on the same server.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
PG_URL = (
    GIVEN_PG_URL
    if GIVEN_PG_URL is None or WORKER is None
    else make_url(GIVEN_PG_URL)
    .set(database=f"{make_url(GIVEN_PG_URL).database}_{WORKER}")
    .render_as_string(False)
)
FIXED_NOW = datetime(2026, 8, 24, 12, 0, tzinfo=UTC)


def data_file(name: str) -> Path:
    """A real series shipped in the repository (see ``tests/data/SOURCES.md``), as a plain CSV
    file; a missing series fails the test."""
    try:
        return realdata.csv_path(name)
    except realdata.MissingSeries as error:
        pytest.fail(str(error))


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db.engine)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def _pg_migrated() -> Iterator[str | None]:
    if PG_URL is None:
        yield None
        return
    own = PG_URL != GIVEN_PG_URL
    if own:
        _worker_database(create=True)
    db = Database(PG_URL)
    upgrade(db.engine)
    db.dispose()
    yield PG_URL
    if own:
        _worker_database(create=False)


def _worker_database(*, create: bool) -> None:
    """Drop this worker's database (and create it afresh), through the given one."""
    assert GIVEN_PG_URL is not None and PG_URL is not None
    name = make_url(PG_URL).database
    admin = create_engine(GIVEN_PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            if create:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


@pytest.fixture
def database_url(tmp_path: Path, _sqlite_template: Path, _pg_migrated: str | None) -> Iterator[str]:
    """A migrated, empty store for this test."""
    if _pg_migrated is None:
        path = tmp_path / "crosswatch.db"
        shutil.copy(_sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    _truncate(_pg_migrated)
    yield _pg_migrated
    _truncate(_pg_migrated)


def _truncate(url: str) -> None:
    db = Database(url)
    names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    with db.engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    db.dispose()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return load_settings(database_url=database_url, seed=False, _env_file=None)


def fixed_clock() -> datetime:
    return FIXED_NOW


def run_cli(
    *args: str, database_url: str, env: dict[str, str] | None = None, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    """Run the real ``crosswatch`` command in a subprocess against ``database_url``."""
    full_env = {
        **os.environ,
        "CROSSWATCH_DATABASE_URL": database_url,
        "CROSSWATCH_SEED": "false",
        **(env or {}),
    }
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "app", *args],
        env=full_env,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        **kwargs,
    )

"""Log lines a newcomer can read: no colour codes or uvicorn's ``color_message``, no
APScheduler narration at INFO, one line per seeded symbol (its events at DEBUG)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from app.db.engine import Database
from app.jobs import ingest
from app.logs import configure, redact
from app.settings import load_settings
from tests.conftest import fixed_clock


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    # A test that starts a uvicorn server leaves uvicorn's logging config behind (levels,
    # handlers of its own, no propagation): these tests start from a fresh process's.
    names = ("apscheduler", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {}
    for name in names:
        logger = logging.getLogger(name)
        saved[name] = (logger.level, logger.handlers[:], logger.propagate, logger.disabled)
        logger.setLevel(logging.NOTSET)
        logger.handlers[:] = []
        logger.propagate, logger.disabled = True, False
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, (logger_level, logger_handlers, propagate, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(logger_level)
        logger.handlers[:] = logger_handlers
        logger.propagate, logger.disabled = propagate, disabled


def _uvicorn_startup_line() -> None:
    # What uvicorn logs when it binds (uvicorn/server.py): the message, and a coloured copy.
    logging.getLogger("uvicorn.error").info(
        "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)",
        "http",
        "127.0.0.1",
        8000,
        extra={"color_message": "Uvicorn running on \x1b[1m%s://%s:%d\x1b[0m (Press CTRL+C)"},
    )


def test_text_lines_carry_no_colour_codes_and_no_color_message(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(load_settings(log_format="text", _env_file=None))
    _uvicorn_startup_line()
    logging.getLogger("crosswatch.test").warning("a \x1b[31mred\x1b[0m word")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert lines[0].endswith(
        " INFO uvicorn: Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C to quit)"
    ), lines[0]
    assert lines[1].endswith(" WARNING crosswatch.test: a red word"), lines[1]
    assert not any("\x1b" in line or "color_message" in line for line in lines)


def test_json_lines_carry_no_color_message(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(load_settings(log_format="json", _env_file=None))
    _uvicorn_startup_line()
    body = json.loads(capsys.readouterr().err)
    assert body["logger"] == "uvicorn"
    assert body["msg"] == "Uvicorn running on http://127.0.0.1:8000 (Press CTRL+C to quit)"
    assert "color_message" not in body


def test_escape_sequences_are_removed_and_secrets_still_redacted() -> None:
    assert redact("\x1b[2J\x1b]0;title\x07ok \x1b[1mcw_abcdefgh12345\x1b[0m") == (
        "0;title\x07ok cw_[redacted]"
    )


def test_apscheduler_narration_only_at_debug(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    scheduler = logging.getLogger("apscheduler.scheduler")
    configure(load_settings(_env_file=None))
    scheduler.info("Adding job tentatively -- it will be properly scheduled")
    scheduler.warning("Run time of job was missed")
    err = capsys.readouterr().err
    assert "Adding job tentatively" not in err
    assert "Run time of job was missed" in err
    configure(load_settings(log_level="DEBUG", _env_file=None))
    scheduler.info("Adding job tentatively -- it will be properly scheduled")
    assert "Adding job tentatively" in capsys.readouterr().err


def test_a_command_can_ask_for_warnings_only(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(load_settings(_env_file=None), at_least=logging.WARNING)
    logging.getLogger("crosswatch.test").info("poll finished")
    logging.getLogger("crosswatch.test").warning("poll failed")
    assert capsys.readouterr().err.count("\n") == 1


def test_seeding_logs_one_line_per_symbol_and_its_events_at_debug(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    ingest.seed(db, ["^RUT"], clock=fixed_clock)
    info = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [(r.name, r.getMessage()) for r in info] == [("crosswatch.ingest", "seeded")]
    assert (info[0].symbol, info[0].sessions, info[0].events) == ("^RUT", 9811, 114)  # type: ignore[attr-defined]
    events = [r for r in caplog.records if r.getMessage() == "event"]
    assert len(events) == 114
    assert {r.levelno for r in events} == {logging.DEBUG}

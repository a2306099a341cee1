"""Log lines are structured and never carry a secret."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from app.logs import configure
from app.settings import load_settings

SECRETS = {
    "Authorization: Bearer cw_q7Jx0aTz1Yp9LmNo3RsTuVwXyZ012345678901234567": "cw_q7Jx0",
    "url=https://stooq.com/q/d/l/?s=^spx&i=d&apikey=K3yStooq99": "K3yStooq99",
    "fred https://api.stlouisfed.org/fred/series?api_key=fr3dkey&file_type=json": "fr3dkey",
    "secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw rotated": "MfKQ9r8",
    "store postgresql+psycopg://crosswatch:hunter2@db:5432/cw": "hunter2",
}


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_secrets_are_redacted_in_messages_extras_and_tracebacks(
    log_format: str, restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(load_settings(log_format=log_format, _env_file=None))
    log = logging.getLogger("crosswatch.test")
    for line in SECRETS:
        log.info(line, extra={"headers": {"Authorization": "Bearer abc.def.ghi"}})
    try:
        raise RuntimeError("GET https://x.test/?apikey=tr4ceb4ck failed")
    except RuntimeError:
        log.exception("poll failed", extra={"symbol": "^RUT"})
    lines = capsys.readouterr().err.strip().splitlines()
    output = "\n".join(lines)
    for leaked in [*SECRETS.values(), "abc.def.ghi", "tr4ceb4ck"]:
        assert leaked not in output
    assert output.count("[redacted]") >= 2 * len(SECRETS)
    if log_format == "json":
        records = [json.loads(line) for line in lines]
        assert records[-1]["symbol"] == "^RUT" and "[redacted]" in records[-1]["exc"]
    else:
        assert "symbol=^RUT" in output


def test_ordinary_values_are_left_alone(
    restore_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure(load_settings(log_format="text", _env_file=None))
    logging.getLogger("crosswatch.poll").info(
        "poll finished", extra={"run": 7, "status": "ok", "symbol": "^RUT", "url": "/v1/signals"}
    )
    line = capsys.readouterr().err
    assert "run=7 status=ok symbol=^RUT url=/v1/signals" in line
    assert "[redacted]" not in line

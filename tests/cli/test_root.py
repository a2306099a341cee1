"""The command line as a whole as a user runs it (help, usage errors, the store named once,
`signals`): real subprocesses against a real, migrated store."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, data_file, run_cli


def test_missing_file_and_bad_setting_are_one_line_errors(database_url: str) -> None:
    result = run_cli("import", "^RUT", "/nonexistent.csv", database_url=database_url)
    assert result.returncode == 1
    assert result.stderr == f"store: {database_url}\nerror: no such file: /nonexistent.csv\n"
    bad = run_cli(
        "export", "^RUT", database_url=database_url, env={"CROSSWATCH_PROVIDERS": "yahoo,bogus"}
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("error: invalid setting CROSSWATCH_PROVIDERS: unknown provider")


def test_help_lists_every_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app", "--help"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0
    for command in ("serve", "migrate", "import", "export"):
        assert command in result.stdout


def test_signals_command_prints_a_table_and_json(database_url: str) -> None:
    imported = run_cli("import", "^RUT", str(data_file("rut_daily.csv")), database_url=database_url)
    assert imported.returncode == 0, imported.stderr
    table = run_cli("signals", database_url=database_url)
    assert table.returncode == 0, table.stderr
    header, row = table.stdout.splitlines()
    for column in ("symbol", "session", "close", "regime", "gap %", "last cross", "trigger"):
        assert column in header
    assert row.split()[:2] == ["^RUT", "2026-08-21"]
    assert "3,017.87" in row and "golden" in row and "golden 2025-08-06" in row
    as_json = run_cli("signals", "^rut", "--json", database_url=database_url)
    signal = json.loads(as_json.stdout)["signals"][0]
    assert (signal["symbol"], signal["regime"], signal["close"]) == ("^RUT", "golden", 3017.87)
    missing = run_cli("signals", "NOPE", database_url=database_url)
    assert missing.returncode == 1
    assert missing.stderr.splitlines()[-1].startswith("error: unknown symbol 'NOPE'")


USAGE_ERRORS = {
    ("replay", "^RUT", "x.csv", "--frm", "2024-01-02"): (
        "error: no such option: --frm, did you mean --from? (try 'crosswatch replay --help')"
    ),
    ("replay", "^RUT", "x.csv"): "error: missing option '--from' (try 'crosswatch replay --help')",
    ("serve", "--port", "abc"): (
        "error: invalid value for '--port': 'abc' is not a valid int "
        "(try 'crosswatch serve --help')"
    ),
    ("exprot",): (
        "error: no such command 'exprot', did you mean 'export'? (try 'crosswatch --help')"
    ),
    ("keys", "create"): ("error: missing option '--name' (try 'crosswatch keys create --help')"),
}


@pytest.mark.parametrize("args", sorted(USAGE_ERRORS))
def test_usage_errors_are_one_line_with_status_2(database_url: str, args: tuple[str, ...]) -> None:
    result = run_cli(*args, database_url=database_url)
    assert result.returncode == 2
    assert result.stderr == USAGE_ERRORS[args] + "\n"
    assert result.stdout == ""


def test_help_shows_no_value_for_flags() -> None:
    for rich in ("1", "0"):
        for command in (["serve"], ["signals"], ["keys", "create"]):
            shown = subprocess.run(
                [sys.executable, "-m", "app", *command, "--help"],
                capture_output=True,
                text=True,
                cwd=ROOT,
                env={**os.environ, "TYPER_USE_RICH": rich},
            )
            assert shown.returncode == 0
            assert "Usage: crosswatch " + " ".join(command) in shown.stdout
            flags = [line for line in shown.stdout.splitlines() if "--no-worker" in line]
            flags += [line for line in shown.stdout.splitlines() if "--json" in line]
            flags += [line for line in shown.stdout.splitlines() if "--admin" in line]
            assert flags
            assert not any(re.search(r"<bool>|BOOLEAN", line) for line in flags), flags


def test_every_store_command_names_its_store_once(tmp_path: Path) -> None:
    # From a folder with no settings: the default store, a file under that folder.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSWATCH_")}
    env["PYTHONPATH"] = str(ROOT)
    created = subprocess.run(
        [sys.executable, "-m", "app", "keys", "create", "--name", "ops"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert created.returncode == 0, created.stderr
    store = (tmp_path / "data" / "crosswatch.db").resolve()
    assert store.exists()
    assert created.stderr == (
        f"store: sqlite:///{store} (the default: data/crosswatch.db under the current "
        "folder; CROSSWATCH_DATABASE_URL chooses another)\n"
    )
    # A password never reaches the terminal (port 1: nothing listens).
    url = "postgresql+psycopg://crosswatch:hunter2@127.0.0.1:1/cw"
    failed = run_cli("migrate", database_url=url)
    assert failed.returncode == 1
    lines = failed.stderr.splitlines()
    assert lines[0] == "store: postgresql+psycopg://crosswatch:***@127.0.0.1:1/cw"
    assert lines[1].startswith("error: the store failed: ")
    assert "hunter2" not in failed.stderr


def test_signals_and_export_name_the_store_on_stderr_only(database_url: str) -> None:
    imported = run_cli("import", "^RUT", str(data_file("rut_daily.csv")), database_url=database_url)
    assert imported.stderr.splitlines()[0] == f"store: {database_url}"
    for args in (("signals",), ("export", "^RUT"), ("migrate",)):
        result = run_cli(*args, database_url=database_url)
        assert result.returncode == 0, result.stderr
        assert result.stderr.count("store: ") == 1
        assert "store:" not in result.stdout

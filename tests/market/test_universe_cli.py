"""``crosswatch universe`` as a user runs it: real subprocesses against a real store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.db.engine import Database
from app.market.models import Symbol, Universe, UniverseMember
from tests.conftest import run_cli

HOLDINGS = Path(__file__).parent / "holdings_sample.csv"


def _store_rows(db: Database) -> list[tuple[Any, ...]]:
    """Everything a universe import can write: symbols, universes, memberships."""
    with db.transaction(write=False) as session:
        symbols = session.execute(
            select(Symbol.symbol, Symbol.active, Symbol.data_version).order_by(Symbol.symbol)
        ).tuples()
        names = session.execute(
            select(Universe.name, Universe.created_at, Universe.updated_at).order_by(Universe.name)
        ).tuples()
        members = session.execute(
            select(UniverseMember.universe, UniverseMember.symbol).order_by(
                UniverseMember.universe, UniverseMember.symbol
            )
        ).tuples()
        return [*symbols, *names, *members]


def test_importing_a_holdings_export_prints_what_was_tracked_and_skipped(
    database_url: str, db: Database
) -> None:
    imported = run_cli("universe", "import", "Small-Caps", str(HOLDINGS), database_url=database_url)
    assert imported.returncode == 0, imported.stderr
    # Preamble lines, the cash and futures rows, the blank and "-" tickers are skipped;
    # CRDO's second row counts once.
    assert imported.stdout == "universe small-caps: 3 symbols (3 newly tracked), 4 rows skipped\n"

    shown = run_cli("universe", "show", "small-caps", database_url=database_url)
    assert shown.stdout.split() == ["BRK.B", "CRDO", "IONQ"]
    listed = run_cli("universe", "list", database_url=database_url)
    assert listed.stdout.startswith("small-caps: 3 symbols (updated ")
    with db.transaction(write=False) as session:
        tracked = session.scalars(select(Symbol.symbol).where(Symbol.active)).all()
    assert sorted(tracked) == ["BRK.B", "CRDO", "IONQ"]


def test_a_second_import_replaces_the_list_and_counts_only_new_symbols(
    database_url: str, tmp_path: Path
) -> None:
    first = run_cli("universe", "import", "mine", str(HOLDINGS), database_url=database_url)
    assert first.returncode == 0, first.stderr
    smaller = tmp_path / "mine.txt"
    smaller.write_text("\ufeff# a plain list, with a BOM\nCRDO\naapl\n", encoding="utf-8")
    again = run_cli("universe", "import", "mine", str(smaller), database_url=database_url)
    assert again.returncode == 0, again.stderr
    assert again.stdout == "universe mine: 2 symbols (1 newly tracked), 0 rows skipped\n"
    shown = run_cli("universe", "show", "mine", database_url=database_url)
    assert shown.stdout.split() == ["AAPL", "CRDO"]


def test_a_refused_file_changes_nothing_and_says_why_on_one_line(
    database_url: str, db: Database, tmp_path: Path
) -> None:
    first = run_cli("universe", "import", "mine", str(HOLDINGS), database_url=database_url)
    assert first.returncode == 0, first.stderr
    before = _store_rows(db)
    assert before, "the first import stored something to compare"
    bad_row = tmp_path / "bad.csv"
    bad_row.write_text(
        "Ticker,Asset Class\nNEWONE,Equity\nAAPL,Equity\nNOT A TICKER,Equity\n", encoding="utf-8"
    )
    not_utf8 = tmp_path / "latin1.txt"
    not_utf8.write_bytes("AAPL\nSOCIÉTÉ\n".encode("latin-1"))
    cases = [
        (("mine", str(bad_row)), "error: line 4: invalid symbol 'NOT A TICKER'"),
        (("mine", str(not_utf8)), f"error: {not_utf8} is not UTF-8 text"),
        (("mine", str(tmp_path / "missing.csv")), "error: no such file:"),
        (("mine", str(tmp_path)), "is a folder, not a file"),
        (("Not A Name", str(HOLDINGS)), "error: invalid universe name 'Not A Name'"),
    ]
    for args, reason in cases:
        refused = run_cli("universe", "import", *args, database_url=database_url)
        assert refused.returncode == 1, args
        # One error line (the CLI may name the store on a line before it).
        errors = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, refused.stderr
        assert reason in errors[0]
        assert refused.stdout == ""
    assert _store_rows(db) == before


def test_showing_an_unknown_universe_is_one_line(database_url: str) -> None:
    listed = run_cli("universe", "list", database_url=database_url)
    assert listed.returncode == 0
    assert listed.stdout.startswith("no universes")
    shown = run_cli("universe", "show", "nope", database_url=database_url)
    assert shown.returncode == 1
    assert shown.stderr.endswith("\nerror: unknown universe 'nope'\n") or shown.stderr == (
        "error: unknown universe 'nope'\n"
    )

"""Market use-cases: import a validated file, seed an empty store, export bars.

Services flush; the caller (CLI command, request, job) owns the transaction.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sqlalchemy.orm import Session

from app.clock import Clock
from app.db.engine import Database
from app.errors import NotFound
from app.market import repository
from app.market.bars import Bar
from app.market.csvfile import CsvFormatError, format_bars, parse_bars

SEED_SOURCE = "bundled"
SEED_FILES = {
    "^RUT": "rut_daily.csv.gz",
    "^GSPC": "gspc_daily.csv.gz",
    "^IXIC": "ixic_daily.csv.gz",
}
IMPORT_SOURCE = "import"


@dataclass(frozen=True)
class ImportReport:
    symbol: str
    rows: int
    counts: repository.UpsertCounts


def normalise_symbol(symbol: str) -> str:
    cleaned = symbol.strip().upper()
    if not cleaned or len(cleaned) > 32 or any(c.isspace() or c in ",/\\" for c in cleaned):
        raise CsvFormatError(None, f"invalid symbol {symbol!r}")
    return cleaned


def read_csv_file(path: Path) -> list[Bar]:
    """Read and validate a whole bar CSV (plain or ``.gz``) before anything is stored."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
                return parse_bars(handle)
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return parse_bars(handle)
    except FileNotFoundError:
        raise CsvFormatError(None, f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise CsvFormatError(None, f"{path} is not UTF-8 text") from None
    except IsADirectoryError:
        raise CsvFormatError(None, f"{path} is a folder, not a file") from None


def store_bars(
    session: Session,
    symbol: str,
    bars: Sequence[Bar],
    *,
    source: str,
    instrument: str | None = None,
    clock: Clock,
    on_progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Track ``symbol`` and upsert its bars (flushes; the caller commits)."""
    now = clock()
    repository.ensure_symbols(session, [symbol], now=now)
    counts = repository.upsert_bars(
        session,
        symbol,
        bars,
        source=source,
        instrument=instrument or symbol,
        fetched_at=now,
        on_progress=on_progress,
    )
    return ImportReport(symbol, len(bars), counts)


def seed_bars(symbol: str) -> list[Bar]:
    package = resources.files("app.market") / "seed" / SEED_FILES[symbol]
    with package.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8", newline="") as text:
        return parse_bars(text)


def seed_if_empty(
    db: Database,
    symbols: Sequence[str],
    *,
    clock: Clock,
    after_store: Callable[[Session, str], object] | None = None,
) -> list[ImportReport]:
    """Load the bundled history of each default index the store holds no bars for.

    Each symbol is its own transaction (with whatever ``after_store`` writes, e.g. the
    events its history implies), so a crash mid-seed leaves whole symbols only.
    """
    reports: list[ImportReport] = []
    for symbol in symbols:
        if symbol not in SEED_FILES:
            continue
        with db.transaction() as session:
            if repository.bar_count(session, symbol):
                continue
            reports.append(
                store_bars(session, symbol, seed_bars(symbol), source=SEED_SOURCE, clock=clock)
            )
            if after_store is not None:
                after_store(session, symbol)
    return reports


def export_csv(session: Session, symbol: str) -> Iterator[str]:
    bars = repository.read_bars(session, symbol)
    if not bars:
        raise NotFound(f"no stored bars for symbol {symbol!r}")
    return format_bars(bars)

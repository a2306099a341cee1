"""Market use-cases: read and check a bar file, the bundled history, export bars.

Storing bars is not here: every writer (poll, import, seed, replay) goes through
:func:`app.jobs.ingest.store_many`, the one store-detect-enqueue path.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from pathlib import Path

from sqlalchemy.orm import Session

from app.errors import NotFound
from app.market import repository
from app.market.bars import Bar
from app.market.csvfile import CsvFormatError, format_bars, parse_bars
from app.market.validation import BadData, validate_bars

BUNDLED_SOURCE = "bundled"
BUNDLED_FILES = {
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
    except (gzip.BadGzipFile, EOFError):
        raise CsvFormatError(None, f"{path} is not a complete gzip file") from None


def check_import(
    bars: list[Bar],
    *,
    now: datetime,
    last_stored: tuple[date, float] | None,
    bad_tick_pct: float,
) -> None:
    """Hold an imported file to the provider-data rules (:mod:`app.market.validation`).

    A provider's response may lose single bars to quarantine; a file is the operator's
    deliberate statement, so any bar a provider's data would lose refuses the whole
    file (one :class:`CsvFormatError` naming the first bar and the count), and nothing
    is stored.
    """
    try:
        checked = validate_bars(bars, now=now, last_stored=last_stored, bad_tick_pct=bad_tick_pct)
    except BadData as exc:
        raise CsvFormatError(None, exc.reason) from None
    if checked.rejected:
        _day, reason = checked.rejected[0]
        more = len(checked.rejected) - 1
        tail = f" (and {more} more row{'s' if more > 1 else ''} refused)" if more else ""
        raise CsvFormatError(None, f"{reason}{tail}")


def bundled_bars(symbol: str) -> list[Bar]:
    """The bundled history of a default index (``app/market/seed/``), which ``seed``
    (:func:`app.jobs.ingest.seed`) loads into an empty store."""
    package = resources.files("app.market") / "seed" / BUNDLED_FILES[symbol]
    with package.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8", newline="") as text:
        return parse_bars(text)


def export_csv(session: Session, symbol: str) -> Iterator[str]:
    bars = repository.read_bars(session, symbol)
    if not bars:
        raise NotFound(f"no stored bars for symbol {symbol!r}")
    return format_bars(bars)

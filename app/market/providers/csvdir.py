"""A local folder of CSV files, one per symbol: ``{CSV_DIR}/{SYMBOL}.csv``.

The file for ``^RUT`` is ``^RUT.csv`` or ``RUT.csv``, matched case-insensitively.
Columns are named by the header, ``date,close[,open,high,low,volume]`` in any order
and any case; extra columns are ignored. Empty cells are unknown values.
"""

from __future__ import annotations

import asyncio
import csv
import io
import math
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import date, datetime
from itertools import repeat
from pathlib import Path

import numpy as np

from app.market.bars import Bar, FetchResult
from app.market.columns import BarColumns
from app.market.providers.base import (
    BadResponse,
    NoData,
    ProviderNotConfigured,
    closed_result,
)
from app.market.providers.limits import ProviderLimit

_OPTIONAL = ("open", "high", "low", "volume")
# ``date.fromisoformat``'s first day: numpy reads year 0 and negative years too.
_FIRST_DAY = np.datetime64("0001-01-01")


class CsvDirProvider:
    """Reads bars from ``csv_dir``; the file is re-read on every fetch."""

    name = "csv"

    def __init__(self, csv_dir: Path | None, *, limit: ProviderLimit | None = None) -> None:
        self._dir = csv_dir
        self._limit = limit

    async def fetch(self, symbol: str, since: date | None, *, now: datetime) -> FetchResult:
        if self._dir is None:
            raise ProviderNotConfigured("the csv provider needs CROSSWATCH_CSV_DIR")
        async with self._limit.turn() if self._limit is not None else nullcontext():
            # Off the event loop: a large file takes milliseconds to read and parse.
            bars = await asyncio.to_thread(_load, self._dir, symbol)
        return closed_result(self.name, symbol, bars, since)


def _load(folder: Path, symbol: str) -> Sequence[Bar]:
    path = find_symbol_file(folder, symbol)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadResponse(f"cannot read {path.name}: {exc}") from None
    return parse_bars_csv(text, path.name)


def find_symbol_file(folder: Path, symbol: str) -> Path:
    """``{symbol}.csv`` or ``{symbol without ^}.csv`` in ``folder``, any case."""
    wanted = {f"{symbol}.csv".lower(), f"{symbol.lstrip('^')}.csv".lower()}
    # The exact names first: listing (and sorting) a folder of thousands of files for
    # every symbol took ~80 ms a symbol at 5,000 files (benchmarks/universe.py).
    for name in sorted({f"{symbol}.csv", f"{symbol.lstrip('^')}.csv"}):
        if (folder / name).is_file():
            return folder / name
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise ProviderNotConfigured(f"CSV_DIR {folder} cannot be listed: {exc}") from None
    for entry in entries:
        if entry.name.lower() in wanted and entry.is_file():
            return entry
    names = " or ".join(sorted(wanted))
    raise NoData(f"no CSV file for {symbol} in {folder} (looked for {names})")


def parse_bars_csv(text: str, file_name: str) -> Sequence[Bar]:
    """Bars from ``date,close[,open,high,low,volume]`` text; ``BadResponse`` names the line.

    A regular file (every row as wide as the header, ISO dates, no empty cells) is
    read column by column into ``BarColumns``; any other goes row by row, which reads
    the same values and names the first line it cannot read.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in next(reader, [])]
    if "date" not in header or "close" not in header:
        raise BadResponse(f"{file_name}: the header must name date and close columns")
    position = {
        name: header.index(name) for name in ("date", "close", *_OPTIONAL) if name in header
    }
    cells = _plain_cells(text, len(header))
    if cells is not None:
        columns = _columns(cells, position)
        if columns is not None:
            return columns
    rows = list(reader)
    if cells is None and rows and set(map(len, rows)) == {len(header)}:
        columns = _columns(list(zip(*rows, strict=True)), position)
        if columns is not None:
            return columns
    return _parse_rows(rows, position, file_name)


def _plain_cells(text: str, width: int) -> list[list[str]] | None:
    """The cells of the rows after the header, by column, when the text is plain: no
    quotes, carriage returns or NULs (the csv reader then splits exactly at newlines
    and commas), and every row ``width`` cells. None for any other text."""
    if '"' in text or "\r" in text or "\0" in text:
        return None
    lines = text.split("\n")[1:]
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or set(map(str.count, lines, repeat(","))) != {width - 1}:
        return None
    flat = ",".join(lines).split(",")
    return [flat[column::width] for column in range(width)]


def _columns(cells: Sequence[Sequence[str]], position: dict[str, int]) -> BarColumns | None:
    """The cells (by column) as ``BarColumns``, or None when a row needs the row-by-row
    reading: a date not in ``YYYY-MM-DD`` form, an empty or unreadable number. The
    values are the row reading's: ``float`` of each cell, and the dates that format
    back to their own text."""
    count = len(cells[0])
    text = np.array(cells[position["date"]])
    if text.dtype != np.dtype("<U10"):
        return None
    try:
        days = text.astype("datetime64[D]")
    except ValueError:
        return None
    if not (np.datetime_as_string(days, unit="D") == text).all() or days.min() < _FIRST_DAY:
        return None
    try:
        numbers = {
            name: np.fromiter(map(float, cells[index]), np.float64, count)
            for name, index in position.items()
            if name != "date"
        }
    except ValueError:
        return None
    return BarColumns(days, numbers["close"], *(numbers.get(name) for name in _OPTIONAL))


def _parse_rows(rows: list[list[str]], position: dict[str, int], file_name: str) -> list[Bar]:
    bars: list[Bar] = []
    for line_number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            values = {name: _cell(row, index) for name, index in position.items() if name != "date"}
            close = values["close"]
            bars.append(
                Bar(
                    session=date.fromisoformat(row[position["date"]].strip()),
                    close=math.nan if close is None else close,
                    **{name: values.get(name) for name in _OPTIONAL},
                )
            )
        except (ValueError, IndexError):
            raise BadResponse(f"{file_name} line {line_number} cannot be read: {row!r}") from None
    return bars


def _cell(row: list[str], index: int) -> float | None:
    cell = row[index].strip() if index < len(row) else ""
    return float(cell) if cell else None

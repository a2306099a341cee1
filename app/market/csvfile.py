"""The bar CSV format: ``date,close[,open,high,low,volume]``, validated whole before use."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from datetime import date
from typing import Protocol

from app.errors import CrosswatchError
from app.market.bars import Bar

# The longest cell text quoted back in an error message: the message stays one short line.
_SHOWN_CHARS = 40

REQUIRED_COLUMNS = ("date", "close")
OPTIONAL_COLUMNS = ("open", "high", "low", "volume")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS


class CsvFormatError(CrosswatchError):
    """The file is not a valid bar CSV; ``line`` is 1-based (the header is line 1)."""

    status = 422
    title = "Invalid CSV"

    def __init__(self, line: int | None, problem: str) -> None:
        self.line = line
        self.problem = problem
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}{problem}")


def _shown(text: str) -> str:
    """``text`` quoted for an error message, cut short (a cell can be megabytes long)."""
    if len(text) <= _SHOWN_CHARS:
        return repr(text)
    return f"{text[:_SHOWN_CHARS]!r}... ({len(text):,} characters)"


def _number(text: str, column: str, line: int, *, required: bool) -> float | None:
    text = text.strip()
    if not text:
        if required:
            raise CsvFormatError(line, f"missing {column}")
        return None
    try:
        value = float(text)
    except ValueError:
        raise CsvFormatError(line, f"{column} {_shown(text)} is not a number") from None
    if math.isnan(value) or math.isinf(value):
        raise CsvFormatError(line, f"{column} is {text}, not a finite number")
    if value <= 0 and column != "volume":
        raise CsvFormatError(line, f"{column} {text} is not positive")
    if value < 0:
        raise CsvFormatError(line, f"{column} {text} is negative")
    return value


def parse_bars(lines: Iterable[str]) -> list[Bar]:
    """Parse and validate a whole file; raise :class:`CsvFormatError` at the first problem.

    Checks: a header naming ``date`` and ``close`` (other columns optional, any order),
    ISO dates strictly ascending with no duplicates, finite positive prices, a
    non-negative volume, and at least one row. A row the ``csv`` module cannot read (a
    field over its 128 KiB limit) is refused with its line like any other problem, and
    a cell quoted back in a message is cut to ``_SHOWN_CHARS``.
    """
    reader = csv.reader(lines)
    try:
        return _parse_rows(reader)
    except csv.Error as exc:
        raise CsvFormatError(reader.line_num or 1, f"unreadable CSV row: {exc}") from None


def _parse_rows(reader: Iterator[list[str]]) -> list[Bar]:
    header = next(reader, None)
    if header is None or not any(cell.strip() for cell in header):
        raise CsvFormatError(None, "the file is empty")
    names = [cell.strip().lower() for cell in header]
    missing = [column for column in REQUIRED_COLUMNS if column not in names]
    if missing:
        raise CsvFormatError(
            1, f"missing header column {missing[0]!r} (expected date,close[,open,high,low,volume])"
        )
    unknown = [name for name in names if name not in COLUMNS]
    if unknown:
        raise CsvFormatError(1, f"unknown header column {_shown(unknown[0])}")
    index = {name: names.index(name) for name in COLUMNS if name in names}
    bars: list[Bar] = []
    previous: date | None = None
    for line, row in enumerate(reader, start=2):
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            raise CsvFormatError(line, f"expected {len(names)} fields, found {len(row)}")
        raw_date = row[index["date"]].strip()
        try:
            day = date.fromisoformat(raw_date)
        except ValueError:
            raise CsvFormatError(line, f"date {_shown(raw_date)} is not YYYY-MM-DD") from None
        if previous is not None and day <= previous:
            problem = "duplicate" if day == previous else "out-of-order"
            raise CsvFormatError(line, f"{problem} date {day} (after {previous})")
        values = {
            column: _number(row[index[column]], column, line, required=column == "close")
            if column in index
            else None
            for column in ("close", *OPTIONAL_COLUMNS)
        }
        close = values["close"]
        assert close is not None
        bars.append(
            Bar(
                session=day,
                close=close,
                open=values["open"],
                high=values["high"],
                low=values["low"],
                volume=values["volume"],
            )
        )
        previous = day
    if not bars:
        raise CsvFormatError(None, "the file has a header but no rows")
    return bars


def _cell(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    # Shortest exact form: ``10`` for 10.0 (as a file would write it), else repr.
    return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)


class _BarLike(Protocol):
    @property
    def session(self) -> date: ...
    @property
    def close(self) -> float: ...
    @property
    def open(self) -> float | None: ...
    @property
    def high(self) -> float | None: ...
    @property
    def low(self) -> float | None: ...
    @property
    def volume(self) -> float | int | None: ...


def format_bars(bars: Iterable[_BarLike]) -> Iterator[str]:
    """Yield the CSV lines (header first) for ``bars``, the same columns as the import.

    Prices are written in their shortest exact form (``17.5`` for ``17.50``, ``10``
    for ``10.0``), so a file round-trips value for value; volumes are integers.
    """
    yield ",".join(COLUMNS) + "\n"
    for bar in bars:
        volume = None if bar.volume is None else round(bar.volume)
        cells = [bar.session.isoformat()] + [
            _cell(v) for v in (bar.close, bar.open, bar.high, bar.low, volume)
        ]
        yield ",".join(cells) + "\n"

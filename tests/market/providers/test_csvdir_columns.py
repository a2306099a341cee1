"""The csv provider's column reading gives exactly the row-by-row reading's bars."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

import pytest

from app.market.bars import Bar
from app.market.columns import BarColumns
from app.market.providers import BadResponse
from app.market.providers.csvdir import _parse_rows, parse_bars_csv
from app.market.service import read_csv_file
from tests.conftest import data_file


def row_by_row(text: str) -> list[Bar]:
    """The reading every file had before columns: one ``Bar`` per row."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header = [name.strip().lower() for name in rows[0]]
    names = ("date", "close", "open", "high", "low", "volume")
    position = {name: header.index(name) for name in names if name in header}
    return _parse_rows(rows[1:], position, "X.csv")


def as_text(bars: Sequence[Bar], *, volume: bool) -> str:
    lines = ["Date,Open,High,Low,Close" + (",Volume" if volume else "")]
    for n, bar in enumerate(bars):
        cells = [bar.session.isoformat(), *(repr(v) for v in (bar.open, bar.high, bar.low))]
        lines.append(",".join([*cells, repr(bar.close), *([str(1000 + n)] if volume else [])]))
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("volume", [True, False])
def test_a_real_series_reads_as_columns_with_the_same_bars(volume: bool) -> None:
    bars = [
        bar
        for bar in read_csv_file(data_file("rut_daily.csv"))
        if None not in (bar.open, bar.high, bar.low)
    ]
    text = as_text(bars, volume=volume)
    parsed = parse_bars_csv(text, "X.csv")
    assert isinstance(parsed, BarColumns)
    assert list(parsed) == row_by_row(text)
    assert [parsed[0], parsed[-1]] == [row_by_row(text)[0], row_by_row(text)[-1]]
    assert [(b.session, b.close, b.open) for b in parsed] == [
        (b.session, b.close, b.open) for b in bars
    ]


@pytest.mark.parametrize(
    "body",
    [
        "2025-04-03,1.5,10\n\n2025-04-04,2,11\n",  # a blank line
        "2025-04-03,1.5,\n2025-04-04,2,11\n",  # an unknown volume
        "2025-04-03,,10\n",  # an unknown close
        " 2025-04-03 ,1.5,10\n",  # spaces around the date
        "20250403,1.5,10\n",  # another ISO form date.fromisoformat reads
        "2025-04-03,1.5,10,extra\n2025-04-04,2,11\n",  # a wider row
        '"2025-04-03","1.5",10\n',  # quoted cells
        "2025-04-03, 1.5 ,1_000\n",  # what float() reads
        "2025-04-03,1.5,10\r\n2025-04-04,2,11\r\n",  # CRLF line ends
        "2025-04-03,1.5,10\n2025-04-04,2,11",  # no newline at the end
    ],
)
def test_irregular_files_read_row_by_row_with_the_same_bars(body: str) -> None:
    text = "date,close,volume\n" + body
    assert list(parse_bars_csv(text, "X.csv")) == row_by_row(text)


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("2025-04-03,1\n2025-02-30,2\n", 3),  # no such day
        ("2025-04-03,1\n0000-01-01,2\n", 3),  # year 0: numpy reads it, date does not
        ("2025-04-03,1\n2025-04-04,n/a\n", 3),
        ("2025-04-03,1\n2025-13-01,2\n", 3),
    ],
)
def test_unreadable_rows_are_named_as_before(body: str, line: int) -> None:
    with pytest.raises(BadResponse, match=f"X.csv line {line} cannot be read"):
        parse_bars_csv("date,close\n" + body, "X.csv")

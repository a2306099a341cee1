from __future__ import annotations

from datetime import date

import pytest

from app.market.bars import Bar
from app.market.csvfile import CsvFormatError, format_bars, parse_bars


def lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def test_parses_required_and_optional_columns_in_any_order() -> None:
    bars = parse_bars(lines("close,date,volume\n10.5,2024-01-02,100\n11,2024-01-03,\n"))
    assert bars == [
        Bar(date(2024, 1, 2), 10.5, volume=100.0),
        Bar(date(2024, 1, 3), 11.0),
    ]


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("", None, "the file is empty"),
        ("date,close\n", None, "the file has a header but no rows"),
        ("day,price\n2024-01-02,1\n", 1, "missing header column 'date'"),
        ("2024-01-02,10\n2024-01-03,11\n", 1, "missing header column 'date'"),
        ("date,close\n2024-13-02,1\n", 2, "date '2024-13-02' is not YYYY-MM-DD"),
        ("date,close\n2024-01-02,abc\n", 2, "close 'abc' is not a number"),
        ("date,close\n2024-01-02,1\n2024-01-03,nan\n", 3, "close is nan, not a finite number"),
        ("date,close\n2024-01-02,0\n", 2, "close 0 is not positive"),
        ("date,close\n2024-01-02,-5.5\n", 2, "close -5.5 is not positive"),
        ("date,close\n2024-01-02,\n", 2, "missing close"),
        ("date,close\n2024-01-02,1\n2024-01-02,2\n", 3, "duplicate date 2024-01-02"),
        ("date,close\n2024-01-03,1\n2024-01-02,2\n", 3, "out-of-order date 2024-01-02"),
        ("date,close\n2024-01-02,1,7\n", 2, "expected 2 fields, found 3"),
        ("date,close,volume\n2024-01-02,1,-3\n", 2, "volume -3 is negative"),
    ],
)
def test_rejects_bad_files_naming_the_line(text: str, line: int | None, problem: str) -> None:
    with pytest.raises(CsvFormatError) as caught:
        parse_bars(lines(text))
    assert caught.value.line == line
    assert caught.value.problem.startswith(problem)


def test_format_round_trips_values() -> None:
    bars = [
        Bar(date(1927, 12, 30), 17.66),
        Bar(date(2026, 8, 20), 7641.16, 7690.49, 7699.96, 7639.01, 4759610000.0),
    ]
    text = "".join(format_bars(bars))
    assert text.splitlines()[2] == "2026-08-20,7641.16,7690.49,7699.96,7639.01,4759610000"
    assert parse_bars(lines(text)) == bars


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (
            "date,close\n2024-01-02,1\n2024-01-03," + "9" * 200_000 + "\n",
            3,
            "unreadable CSV row: field larger than field limit (131072)",
        ),
        ("date" + "x" * 200_000 + ",close\n", 1, "unreadable CSV row: field larger than"),
        (
            "date,close\n2024-01-02," + "x" * 50_000 + "\n",
            2,
            "close '" + "x" * 40 + "'... (50,000 characters) is not a number",
        ),
    ],
)
def test_unreadable_or_huge_cells_are_one_short_line(text: str, line: int, problem: str) -> None:
    with pytest.raises(CsvFormatError) as caught:
        parse_bars(text.splitlines(keepends=True))
    assert caught.value.line == line
    assert caught.value.problem.startswith(problem)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 200

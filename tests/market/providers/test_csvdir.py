"""The CSV folder provider on real files in a temporary folder."""

from __future__ import annotations

import asyncio
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from app.market.bars import FetchResult
from app.market.providers import BadResponse, CsvDirProvider, NoData, ProviderNotConfigured
from tests.market.providers.support import FIXTURES

NOW = datetime(2025, 4, 8, tzinfo=UTC)


def fetch(folder: Path | None, symbol: str, since: date | None = None) -> FetchResult:
    return asyncio.run(CsvDirProvider(folder).fetch(symbol, since, now=NOW))


def test_symbol_file_without_caret_any_case_and_columns_in_any_order(tmp_path: Path) -> None:
    (tmp_path / "rut.csv").write_text(
        "Close,DATE,volume,note\n2010.5,2025-04-03,12,x\n1990.25,2025-04-04,,y\n",
        encoding="utf-8",
    )
    result = fetch(tmp_path, "^RUT")
    assert (result.source, result.instrument) == ("csv", "^RUT")
    assert [(bar.session, bar.close, bar.volume, bar.open) for bar in result.bars] == [
        (date(2025, 4, 3), 2010.5, 12.0, None),
        (date(2025, 4, 4), 1990.25, None, None),
    ]


def test_exact_symbol_name_and_since(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "stooq_spx_d.csv", tmp_path / "^GSPC.csv")
    result = fetch(tmp_path, "^GSPC", since=date(2025, 4, 4))
    assert [(bar.session, bar.close, bar.open) for bar in result.bars] == [
        (date(2025, 4, 4), 5074.08, 5292.14),
        (date(2025, 4, 7), 5062.25, 4909.66),
    ]


def test_missing_file_is_no_data(tmp_path: Path) -> None:
    with pytest.raises(
        NoData, match=r"no CSV file for \^IXIC .* \(looked for \^ixic.csv or ixic.csv\)"
    ):
        fetch(tmp_path, "^IXIC")


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("day,price\n2025-04-03,1\n", "IWM.csv: the header must name date and close columns"),
        (
            "date,close\n2025-04-03,1\n04/04/2025,2\n",
            "IWM.csv line 3 cannot be read: ['04/04/2025', '2']",
        ),
        ("date,close\n2025-04-03,n/a\n", "IWM.csv line 2 cannot be read: ['2025-04-03', 'n/a']"),
    ],
)
def test_unreadable_files_name_the_line(tmp_path: Path, text: str, reason: str) -> None:
    (tmp_path / "IWM.csv").write_text(text, encoding="utf-8")
    with pytest.raises(BadResponse) as caught:
        fetch(tmp_path, "IWM")
    assert caught.value.reason == reason


def test_unset_folder_is_not_configured() -> None:
    with pytest.raises(ProviderNotConfigured, match="CROSSWATCH_CSV_DIR"):
        fetch(None, "IWM")

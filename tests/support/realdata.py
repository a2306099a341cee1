"""The real daily series shipped inside the repository, for tests and benchmarks.

The three default indices are the package's own seed (``app/market/seed``); the ETFs live in
``tests/data``. Both are gzip-compressed CSV (``date,close,open,high,low,volume``). Nothing here
reaches outside the repository, so a fresh clone has everything its suite needs.
"""

from __future__ import annotations

import atexit
import gzip
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = (ROOT / "app" / "market" / "seed", ROOT / "tests" / "data")
SERIES = ("rut", "gspc", "ixic", "iwm", "qqq", "spy")

_unpacked: Path | None = None


class MissingSeries(FileNotFoundError):
    """A real series the caller asked for is not in the repository."""


def compressed(filename: str) -> Path:
    """The ``.csv.gz`` holding ``filename`` (e.g. ``rut_daily.csv``) in the repository."""
    for folder in FOLDERS:
        path = folder / f"{filename}.gz"
        if path.exists():
            return path
    raise MissingSeries(f"real data {filename}.gz is in none of {[str(f) for f in FOLDERS]}")


def read_text(filename: str) -> str:
    """The CSV text of ``filename``."""
    with gzip.open(compressed(filename), "rt", encoding="utf-8", newline="") as handle:
        return handle.read()


def csv_path(filename: str) -> Path:
    """A plain CSV copy of ``filename`` on disk (unpacked once per process, removed at exit),
    for callers that take a file path, such as ``crosswatch import``."""
    global _unpacked
    if _unpacked is None:
        _unpacked = Path(tempfile.mkdtemp(prefix="crosswatch-realdata-"))
        atexit.register(shutil.rmtree, _unpacked, True)
    path = _unpacked / filename
    if not path.exists():
        partial = path.with_suffix(".part")
        with gzip.open(compressed(filename), "rb") as source, partial.open("wb") as target:
            shutil.copyfileobj(source, target)
        partial.replace(path)
    return path

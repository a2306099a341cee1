"""The bundled history seeded into a test's store once per process: ``ingest.seed`` runs
the first time a set of symbols is asked for at a time; later SQLite stores get a copy of
the result (SQLite's online backup, safe beside the store's open connections). PostgreSQL
stores are seeded each time (the run there covers the seeding path too)."""

from __future__ import annotations

import atexit
import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from app.db.engine import Database
from app.jobs import ingest

_templates: dict[tuple[tuple[str, ...], datetime], Path] = {}
_folder: Path | None = None


def seed(db: Database, symbols: Sequence[str], *, now: datetime) -> None:
    """``ingest.seed(db, symbols, clock=lambda: now)`` on an empty, migrated store."""
    if not db.is_sqlite:
        ingest.seed(db, symbols, clock=lambda: now)
        return
    store = Path(str(db.engine.url.database))
    key = (tuple(symbols), now)
    template = _templates.get(key)
    if template is None:
        ingest.seed(db, symbols, clock=lambda: now)
        template = _new_folder() / f"seeded-{len(_templates)}.db"
        _copy(store, template)
        _templates[key] = template
    else:
        _copy(template, store)


def _new_folder() -> Path:
    global _folder
    if _folder is None:
        _folder = Path(tempfile.mkdtemp(prefix="crosswatch-seeded-"))
        atexit.register(shutil.rmtree, _folder, True)
    return _folder


def _copy(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as reading, sqlite3.connect(target) as writing:
        reading.backup(writing)
    reading.close()
    writing.close()

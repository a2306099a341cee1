"""SQL for the market domain, one module per role: bar writes (:mod:`.writes`),
per-symbol look-ups (:mod:`.lookups`), poll runs (:mod:`.runs`), the close matrix and
the serving snapshot (:mod:`.panels`), and how they read the store (:mod:`.readers`).
Callers use this package's names."""

from app.market.repository.lookups import (
    Provenance,
    bar_before,
    bar_count,
    data_versions,
    last_sessions,
    newest_provenance,
    read_bars,
    session_before,
    spans,
    tracked_symbols,
)
from app.market.repository.panels import (
    ClosePanel,
    StoreSnapshot,
    VolumeRows,
    load_panel,
    load_volumes,
    read_snapshot,
)
from app.market.repository.runs import (
    finish_run,
    recent_runs,
    record_result,
    record_results,
    results_of,
    start_run,
)
from app.market.repository.writes import (
    BarWrite,
    UpsertCounts,
    WriteResult,
    bump_versions,
    ensure_symbols,
    stop_tracking,
    upsert_many,
)

__all__ = [
    "BarWrite",
    "ClosePanel",
    "Provenance",
    "StoreSnapshot",
    "UpsertCounts",
    "VolumeRows",
    "WriteResult",
    "bar_before",
    "bar_count",
    "bump_versions",
    "data_versions",
    "ensure_symbols",
    "finish_run",
    "last_sessions",
    "load_panel",
    "load_volumes",
    "newest_provenance",
    "read_bars",
    "read_snapshot",
    "recent_runs",
    "record_result",
    "record_results",
    "results_of",
    "session_before",
    "spans",
    "start_run",
    "stop_tracking",
    "tracked_symbols",
    "upsert_many",
]

"""The close matrix (:class:`ClosePanel`), the serving snapshot and stored volumes."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Dialect, func, select, tuple_
from sqlalchemy.orm import Session

from app.market.models import DailyBar, Symbol
from app.market.repository.lookups import (
    Provenance,
    _data_versions,
    _newest_provenance,
    _tracked_symbols,
)
from app.market.repository.readers import (
    _SYMBOLS_PER_QUERY,
    _ArrowReader,
    _committed_reader,
    _epoch_days,
    _Reader,
    _SessionReader,
)

# Symbols per chunk of a panel load: bounds the driver's row tuples held at once.
_PANEL_SYMBOLS_PER_QUERY = 500
# Symbols per chunk of a panel read through Arrow (16 bytes a row: ~40 MB a chunk).
_ARROW_SYMBOLS_PER_QUERY = 1_000


@dataclass(frozen=True)
class ClosePanel:
    """The symbols × sessions close matrix the kernel takes.

    Row ``i`` holds ``symbols[i]``'s own consecutive stored sessions, right-aligned:
    NaN (and ``NaT`` in ``sessions``) only as left padding for shorter histories.
    """

    symbols: list[str]
    closes: npt.NDArray[np.float64]
    sessions: npt.NDArray[np.datetime64]

    def row(self, symbol: str) -> int:
        return self.symbols.index(symbol)


@dataclass(frozen=True)
class StoreSnapshot:
    """What the serving snapshot reads: every tracked symbol's closes, each symbol's
    data version, and who produced each newest bar, all of one state of the store."""

    fingerprint: dict[str, int]
    panel: ClosePanel
    provenance: dict[str, Provenance]


def read_snapshot(session: Session) -> StoreSnapshot:
    """The committed store's :class:`StoreSnapshot`, read in one read transaction of its
    own (see :func:`_committed_reader`), not in ``session``'s: the data versions are
    exactly those of the closes read, whatever is written meanwhile, so a snapshot
    keyed by them is never torn. Uncommitted writes of ``session`` are not seen.

    Through Arrow the panel's 12.6 M rows of a 5,000-symbol universe arrive as columns:
    about a quarter of the time of the driver's row tuples (:func:`load_panel`).
    """
    count = select(func.count()).select_from(Symbol).where(Symbol.active)
    with _committed_reader(session, symbols=int(session.scalar(count) or 0)) as reader:
        fingerprint = _data_versions(reader)
        symbols = _tracked_symbols(reader)
        chunk = (
            _ARROW_SYMBOLS_PER_QUERY
            if isinstance(reader, _ArrowReader)
            else _PANEL_SYMBOLS_PER_QUERY
        )
        panel = _load_panel(reader, symbols, None, chunk)
        provenance = _newest_provenance(reader, symbols)
    return StoreSnapshot(fingerprint, panel, provenance)


def load_panel(session: Session, symbols: Sequence[str], *, tail: int | None = None) -> ClosePanel:
    """Load the stored closes of ``symbols`` as a right-aligned :class:`ClosePanel`,
    inside ``session``'s transaction (detection reads what its own write left).

    With ``tail`` only each symbol's newest ``tail`` sessions are read. First one
    index-only count per symbol (the panel's width), then per chunk of symbols two
    plain columns (epoch day, close) straight from the driver's cursor, written into
    the matrices at once: no symbol text per row, and no row tuples kept beyond a
    chunk (a whole universe's rows as tuples would take gigabytes).
    """
    return _load_panel(_SessionReader(session), symbols, tail, _PANEL_SYMBOLS_PER_QUERY)


def _load_panel(
    reader: _Reader, symbols: Sequence[str], tail: int | None, per_query: int
) -> ClosePanel:
    unique = list(dict.fromkeys(symbols))
    dialect = reader.dialect
    chunks: list[list[tuple[str, int]]] = []  # per chunk: (symbol, rows) in the store's order
    for start in range(0, len(unique), per_query):
        chosen = _panel_rows(dialect, unique[start : start + per_query], tail)
        query = (
            select(chosen.c.symbol, func.count())
            .group_by(chosen.c.symbol)
            .order_by(chosen.c.symbol)
        )
        found = [(name, int(count)) for name, count in reader.rows(query)]
        if found:
            chunks.append(found)
    width = max((count for found in chunks for _, count in found), default=0)
    matrix = np.full((len(symbols), width), np.nan, dtype=np.float64)
    sessions = np.full((len(symbols), width), np.datetime64("NaT"), dtype="datetime64[D]")
    row_of = {symbol: row for row, symbol in enumerate(symbols)}
    for found in chunks:
        chosen = _panel_rows(dialect, [name for name, _ in found], tail)
        query = select(chosen.c.day, chosen.c.close).order_by(chosen.c.symbol, chosen.c.session)
        days, closes = reader.numbers(query)
        lengths = np.array([count for _, count in found], dtype=np.int64)
        if int(lengths.sum()) != len(closes):
            raise RuntimeError("the store changed while a panel was read")
        targets = np.repeat(np.array([row_of[name] for name, _ in found]), lengths)
        starts = np.repeat(np.cumsum(lengths) - lengths, lengths)
        columns = np.arange(len(closes)) - starts + np.repeat(width - lengths, lengths)
        matrix[targets, columns] = closes
        sessions[targets, columns] = days.astype(np.int64).astype("datetime64[D]")
    return ClosePanel(list(symbols), matrix, sessions)


def _panel_rows(dialect: Dialect, symbols: Sequence[str], tail: int | None) -> Any:
    """The (symbol, session, day, close) rows of ``symbols`` a panel reads, as a
    subquery (with ``tail``: each symbol's newest ``tail`` sessions only)."""
    query = select(
        DailyBar.symbol, DailyBar.session, _epoch_days(dialect).label("day"), DailyBar.close
    ).where(DailyBar.symbol.in_(symbols))
    if tail is not None:
        ranked = (
            select(
                DailyBar.symbol,
                DailyBar.session,
                func.row_number()
                .over(partition_by=DailyBar.symbol, order_by=DailyBar.session.desc())
                .label("age"),
            )
            .where(DailyBar.symbol.in_(symbols))
            .subquery()
        )
        query = query.where(
            tuple_(DailyBar.symbol, DailyBar.session).in_(
                select(ranked.c.symbol, ranked.c.session).where(ranked.c.age <= tail)
            )
        )
    return query.subquery()


@dataclass(frozen=True)
class VolumeRows:
    """Stored volumes as flat arrays, grouped by symbol: ``counts[i]`` rows of
    ``symbols[i]`` (in that order, sessions ascending); NaN where no volume is stored."""

    symbols: list[str]
    counts: npt.NDArray[np.int64]
    sessions: npt.NDArray[np.datetime64]
    volumes: npt.NDArray[np.float64]


def load_volumes(session: Session, symbols: Sequence[str], *, since: date) -> VolumeRows:
    """The stored volumes of ``symbols`` from session ``since`` on (one query per
    :data:`_SYMBOLS_PER_QUERY` symbols), e.g. the newest sessions a screen compares."""
    days = _epoch_days(session.get_bind().dialect)
    names: list[str] = []
    counts: list[int] = []
    day_numbers: list[int] = []
    values: list[float | None] = []
    unique = list(dict.fromkeys(symbols))
    for start in range(0, len(unique), _SYMBOLS_PER_QUERY):
        query = (
            select(DailyBar.symbol, days, DailyBar.volume)
            .where(
                DailyBar.symbol.in_(unique[start : start + _SYMBOLS_PER_QUERY]),
                DailyBar.session >= since,
            )
            .order_by(DailyBar.symbol, DailyBar.session)
        )
        result = session.connection().execute(query)
        rows: Sequence[tuple[str, int, float | None]] = result.cursor.fetchall()
        result.close()
        for name, group in itertools.groupby(rows, key=lambda row: row[0]):
            chunk = list(group)
            names.append(name)
            counts.append(len(chunk))
            day_numbers.extend(row[1] for row in chunk)
            values.extend(row[2] for row in chunk)
    return VolumeRows(
        names,
        np.array(counts, dtype=np.int64),
        np.array(day_numbers, dtype=np.int64).astype("datetime64[D]"),
        np.array(values, dtype=np.float64),
    )

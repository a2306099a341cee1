"""The signal book cut at a past session, for a brief of that session: the closes after
it dropped, analysed again, and kept while the data and the session asked stay the same."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import date
from weakref import WeakKeyDictionary

import numpy as np
from sqlalchemy.orm import Session

from app.market.repository import ClosePanel
from app.signals.analysis import analyse
from app.signals.book import SignalBook, Snapshot


class CutBook(SignalBook):
    """A signal book that always serves one snapshot: the data cut at a session."""

    def __init__(self, snapshot: Snapshot) -> None:
        super().__init__()
        self._fixed = snapshot

    def snapshot(self, session: Session) -> Snapshot:
        return self._fixed


def cut_panel(panel: ClosePanel, day: date) -> ClosePanel:
    """``panel`` with every close after ``day`` dropped (rows stay right-aligned).

    The columns around where most rows' kept closes end are sliced (a view); only the
    rows whose kept closes end elsewhere, or that keep none, are moved, in a copy.
    """
    sessions = panel.sessions
    width = sessions.shape[1]
    lengths = np.count_nonzero(~np.isnat(sessions), axis=1)
    kept = lengths - np.count_nonzero(sessions > np.datetime64(day), axis=1)
    if not kept.size or kept.max() == 0:
        empty = np.empty((len(panel.symbols), 0))
        return ClosePanel(panel.symbols, empty, empty.astype("datetime64[D]"))
    ends = width - lengths + kept  # each row's column after its last kept close
    new_width = int(kept.max())
    values, counts = np.unique(ends[kept > 0], return_counts=True)
    end = int(values[np.argmax(counts)])  # where most rows' kept closes end
    if end >= new_width:
        closes = panel.closes[:, end - new_width : end]
        days = sessions[:, end - new_width : end]
        moved = np.flatnonzero((ends != end) & (lengths > 0))
    else:
        closes = np.full((len(panel.symbols), new_width), np.nan)
        days = np.full(closes.shape, np.datetime64("NaT", "D"))
        moved = np.flatnonzero(lengths > 0)
    if moved.size:
        closes, days = closes.copy(), days.copy()
        column = np.arange(new_width)[None, :]
        inside = column >= (new_width - kept[moved])[:, None]
        at = np.clip(column + (ends[moved] - new_width)[:, None], 0, max(width - 1, 0))
        rows = moved[:, None]
        closes[moved] = np.where(inside, panel.closes[rows, at], np.nan)
        days[moved] = np.where(inside, sessions[rows, at], np.datetime64("NaT", "D"))
    return ClosePanel(panel.symbols, closes, days)


# Per book: the data version and session of the cuts kept, and the cuts by their rows.
_cuts: WeakKeyDictionary[
    SignalBook, tuple[dict[str, int], date, dict[tuple[str, ...], SignalBook]]
] = WeakKeyDictionary()
_cuts_lock = threading.Lock()


def book_as_of(book: SignalBook, session: Session, day: date, symbols: Sequence[str]) -> SignalBook:
    """``book`` as it was after the close of ``day``, for ``symbols``: itself when
    ``day`` is its newest session, else a book over the rows of ``symbols`` cut at
    ``day``, as wide as their own histories. Each cut is one analysis of those rows
    (seconds for thousands of symbols), built one at a time and kept while the data
    version and the session asked stay the same."""
    snap = book.snapshot(session)
    sessions = snap.calendar.sessions
    if sessions.size and np.datetime64(day) >= sessions[-1]:
        return book
    key = tuple(sorted(symbols))  # rows in symbol order, as the panel's (screen ties)
    with _cuts_lock:
        kept = _cuts.get(book)
        if kept is None or kept[0] != snap.fingerprint or kept[1] != day:
            kept = (snap.fingerprint, day, {})
            _cuts[book] = kept
        dated = kept[2].get(key)
        if dated is None:
            panel = snap.analysis.panel
            rows = np.array([snap.row(symbol) for symbol in key], dtype=np.int64)
            # Only the columns these rows use: the panel is as wide as its longest row.
            start = panel.closes.shape[1] - int(snap.analysis.lengths[rows].max(initial=0))
            chosen = ClosePanel(list(key), panel.closes[rows, start:], panel.sessions[rows, start:])
            dated = CutBook(
                Snapshot(
                    fingerprint=snap.fingerprint,
                    analysis=analyse(cut_panel(chosen, day)),
                    provenance=snap.provenance,
                )
            )
            kept[2][key] = dated
        return dated

"""Bars as columns: a whole file's sessions and prices in arrays, read as ``Bar``s.

A backfill moves millions of bars from a provider to the store. ``BarColumns`` keeps
them as arrays (one per field) so that parsing, validation, the insert and detection
work on whole columns; it is still a ``Sequence[Bar]``, so every reader of bars takes
it unchanged, and a ``Bar`` is built only when one is read.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import overload

import numpy as np
import numpy.typing as npt

from app.market.bars import Bar

Floats = npt.NDArray[np.float64]

#: The optional fields, in ``Bar``'s order.
OPTIONAL = ("open", "high", "low", "volume")


@dataclass(frozen=True, eq=False)
class BarColumns(Sequence[Bar]):
    """Bars in arrays. ``sessions`` (``datetime64[D]``) and ``closes`` hold every bar;
    an optional field is an array of known values (no unknown ones) or ``None`` when
    every bar's value is unknown."""

    sessions: npt.NDArray[np.datetime64]
    closes: Floats
    opens: Floats | None = None
    highs: Floats | None = None
    lows: Floats | None = None
    volumes: Floats | None = None

    def __len__(self) -> int:
        return len(self.closes)

    @overload
    def __getitem__(self, index: int) -> Bar: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Bar]: ...

    def __getitem__(self, index: int | slice) -> Bar | Sequence[Bar]:
        if isinstance(index, slice):
            return self.take(np.arange(len(self))[index])
        position = range(len(self))[index]  # IndexError like a list's
        return Bar(
            self.sessions[position].item(),
            float(self.closes[position]),
            *(None if values is None else float(values[position]) for values in self.optional),
        )

    def __iter__(self) -> Iterator[Bar]:
        known = [None if values is None else values.tolist() for values in self.optional]
        blank = [None] * len(self)
        return map(
            Bar,
            self.days(),
            self.closes.tolist(),
            *(blank if values is None else values for values in known),
        )

    @property
    def optional(self) -> tuple[Floats | None, ...]:
        return (self.opens, self.highs, self.lows, self.volumes)

    def days(self) -> list[date]:
        """The sessions as ``date``s."""
        days: list[date] = self.sessions.tolist()
        return days

    def take(self, rows: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> BarColumns:
        """The bars at ``rows`` (positions or a mask), in that order."""
        return BarColumns(
            self.sessions[rows],
            self.closes[rows],
            *(None if values is None else values[rows] for values in self.optional),
        )

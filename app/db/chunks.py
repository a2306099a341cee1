"""Long ``IN (...)`` lists, split: each value is one bound parameter, and stores cap
those (SQLite: 32,766 per statement, PostgreSQL: 65,535), so a list that comes from
user input or from a whole table is queried in slices of :data:`IN_CHUNK`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

IN_CHUNK = 500


def chunks(values: Iterable[T], size: int = IN_CHUNK) -> Iterator[list[T]]:
    """``values`` in consecutive lists of at most ``size`` (none for no values)."""
    batch: list[T] = []
    for value in values:
        batch.append(value)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch

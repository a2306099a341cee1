"""Universes: named symbol lists (index constituents, a fund's holdings).

A universe's members are tracked symbols: replacing a list tracks every new member (the
next poll backfills it). Deleting a universe, or dropping a symbol from it, keeps the
symbol tracked and its stored data; stop tracking it with ``DELETE /v1/symbols/{symbol}``.

Names are lower-case letters, digits and ``_ . -`` (at most 64, first a letter or digit);
a universe holds at most :data:`MAX_MEMBERS` symbols.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from app.db.chunks import chunks
from app.errors import InvalidInput, NotFound
from app.market.models import Symbol, Universe, UniverseMember
from app.market.symbols import canonical

NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
MAX_MEMBERS = 10_000
# Where a holdings export's header row may start (fund files put a preamble first).
HEADER_SEARCH_ROWS = 50
SYMBOL_COLUMNS = ("ticker", "symbol")
SKIPPED_TICKERS = frozenset({"", "-", "--"})
# A symbol file read whole: a holdings export of MAX_MEMBERS rows is a few MB.
MAX_FILE_BYTES = 16 * 1024 * 1024


def canonical_name(name: str) -> str:
    """Lower-case and check a universe name."""
    cleaned = name.strip().lower()
    if not NAME_PATTERN.fullmatch(cleaned):
        raise InvalidInput(
            f"invalid universe name {name!r}: use letters, digits and _ . - "
            "(at most 64, starting with a letter or digit), e.g. russell2000"
        )
    return cleaned


@dataclass(frozen=True)
class UniverseInfo:
    name: str
    members: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Replaced:
    """What :func:`replace` did: the list stored, and which symbols it began tracking."""

    name: str
    created: bool
    symbols: list[str]
    newly_tracked: list[str]


def list_all(session: Session) -> list[UniverseInfo]:
    counts = (
        select(UniverseMember.universe, func.count().label("members"))
        .group_by(UniverseMember.universe)
        .subquery()
    )
    rows = session.execute(
        select(Universe, func.coalesce(counts.c.members, 0))
        .outerjoin(counts, counts.c.universe == Universe.name)
        .order_by(Universe.name)
    ).all()
    return [
        UniverseInfo(
            universe.name, int(members), _utc(universe.created_at), _utc(universe.updated_at)
        )
        for universe, members in rows
    ]


def info(session: Session, name: str) -> UniverseInfo:
    """Universe ``name`` and its member count; 404 if there is no such universe."""
    cleaned = canonical_name(name)
    universe = _get(session, cleaned)
    count = session.scalar(
        select(func.count()).select_from(UniverseMember).where(UniverseMember.universe == cleaned)
    )
    return UniverseInfo(
        universe.name, int(count or 0), _utc(universe.created_at), _utc(universe.updated_at)
    )


def _utc(value: datetime) -> datetime:
    # SQLite keeps no offset; every stored time is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def existing(session: Session, name: str) -> str:
    """The canonical name of universe ``name``; 404 if there is no such universe."""
    cleaned = canonical_name(name)
    _get(session, cleaned)
    return cleaned


def memberships(
    session: Session, names: Collection[str], symbols: Collection[str]
) -> set[tuple[str, str]]:
    """The (universe, symbol) pairs among ``names`` x ``symbols`` that are memberships now.

    A few bulk reads (both lists in slices), whatever the number of subscriptions or
    events asking: what the outbox fan-out matches universe subscriptions against.
    """
    found: set[tuple[str, str]] = set()
    for names_part in chunks(sorted(set(names))):
        for symbols_part in chunks(sorted(set(symbols))):
            rows = session.execute(
                select(UniverseMember.universe, UniverseMember.symbol).where(
                    UniverseMember.universe.in_(names_part),
                    UniverseMember.symbol.in_(symbols_part),
                )
            ).tuples()
            found.update(rows)
    return found


def members(session: Session, name: str) -> list[str]:
    """The symbols of universe ``name`` in symbol order; 404 if there is no such universe."""
    cleaned = canonical_name(name)
    _get(session, cleaned)
    return list(
        session.scalars(
            select(UniverseMember.symbol)
            .where(UniverseMember.universe == cleaned)
            .order_by(UniverseMember.symbol)
        )
    )


def replace(session: Session, name: str, symbols: Sequence[str], *, now: datetime) -> Replaced:
    """Make ``symbols`` the members of ``name`` (created if new); track new symbols.

    Every symbol is checked before anything is written, so a refused list changes
    nothing. Duplicates count once.
    """
    cleaned = canonical_name(name)
    wanted = list(dict.fromkeys(canonical(symbol) for symbol in symbols))
    if len(wanted) > MAX_MEMBERS:
        raise InvalidInput(
            f"a universe holds at most {MAX_MEMBERS:,} symbols; this list has {len(wanted):,}"
        )
    newly_tracked = _track_all(session, wanted, now=now)
    universe = session.get(Universe, cleaned)
    created = universe is None
    if universe is None:
        session.add(Universe(name=cleaned, created_at=now, updated_at=now))
    else:
        universe.updated_at = now
    session.flush()
    session.execute(delete(UniverseMember).where(UniverseMember.universe == cleaned))
    if wanted:
        session.execute(
            insert(UniverseMember), [{"universe": cleaned, "symbol": s} for s in wanted]
        )
    session.flush()
    return Replaced(cleaned, created, sorted(wanted), newly_tracked)


def remove(session: Session, name: str) -> None:
    """Delete universe ``name``; its symbols stay tracked and their data stays stored."""
    cleaned = canonical_name(name)
    _get(session, cleaned)
    session.execute(delete(UniverseMember).where(UniverseMember.universe == cleaned))
    session.execute(delete(Universe).where(Universe.name == cleaned))
    session.flush()


def _get(session: Session, name: str) -> Universe:
    universe = session.get(Universe, name)
    if universe is None:
        raise NotFound(f"unknown universe {name!r}")
    return universe


def _track_all(session: Session, symbols: Sequence[str], *, now: datetime) -> list[str]:
    """Track every symbol in ``symbols`` with a few bulk statements; the newly tracked."""
    stored: dict[str, bool] = {}
    for chunk in chunks(symbols):
        rows = session.execute(
            select(Symbol.symbol, Symbol.active).where(Symbol.symbol.in_(chunk))
        ).tuples()
        stored.update((symbol, active) for symbol, active in rows)
    missing = [s for s in symbols if s not in stored]
    inactive = [s for s in symbols if stored.get(s) is False]
    if missing:
        session.execute(
            insert(Symbol),
            [{"symbol": s, "created_at": now, "active": True, "data_version": 0} for s in missing],
        )
    for chunk in chunks(inactive):
        session.execute(
            update(Symbol)
            .where(Symbol.symbol.in_(chunk))
            .values(active=True, data_version=Symbol.data_version + 1)
        )
    return sorted([*missing, *inactive])


@dataclass(frozen=True)
class SymbolList:
    """Symbols read from a file, and how many of its rows were skipped."""

    symbols: list[str]
    skipped: int


def read_symbol_file(path: Path) -> SymbolList:
    """:func:`parse_symbol_file` of the file at ``path`` (UTF-8, a BOM allowed); a file
    that is missing, unreadable, not UTF-8 or over :data:`MAX_FILE_BYTES` is one line."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InvalidInput(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a folder, not a file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise InvalidInput(f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text") from None
    return parse_symbol_file(text)


def parse_symbol_file(text: str) -> SymbolList:
    """Symbols from one symbol a line, or from a CSV (a fund-holdings export, say).

    A CSV's header row names a ``Ticker`` or ``Symbol`` column, possibly after preamble
    lines; the table ends at the first blank row (holdings exports put a disclaimer
    after it). Rows whose ``Asset Class`` (where that column exists) is not ``Equity``,
    and rows whose ticker is blank or ``-``, are skipped. Any other ticker that is not a
    valid symbol refuses the whole file, naming its line.
    """
    try:
        rows = _rows(text)
        header_at = _header_row(rows)
        if header_at is None:
            return _plain_list(rows)
        return _table(rows, header_at)
    except csv.Error as exc:
        raise InvalidInput(f"not a readable symbol list or CSV: {exc}") from None


def _rows(text: str) -> list[tuple[int, list[str]]]:
    reader = csv.reader(io.StringIO(text))
    return [(reader.line_num, row) for row in reader]


def _blank(row: Iterable[str]) -> bool:
    return all(not cell.strip() for cell in row)


def _header_row(rows: Sequence[tuple[int, list[str]]]) -> int | None:
    for index, (_, row) in enumerate(rows[:HEADER_SEARCH_ROWS]):
        cells = [cell.strip().lower() for cell in row]
        if any(column in cells for column in SYMBOL_COLUMNS) and len(cells) > 1:
            return index
        if len(cells) == 1 and cells[0] in SYMBOL_COLUMNS:
            return index
    return None


def _checked(symbol: str, line: int) -> str:
    try:
        return canonical(symbol)
    except InvalidInput as exc:
        raise InvalidInput(f"line {line}: {exc.detail}") from None


def _plain_list(rows: Sequence[tuple[int, list[str]]]) -> SymbolList:
    symbols: list[str] = []
    for line, row in rows:
        if _blank(row) or row[0].lstrip().startswith("#"):
            continue
        if sum(1 for cell in row if cell.strip()) > 1:
            raise InvalidInput(
                f"line {line}: expected one symbol a line, or a CSV with a Ticker or "
                "Symbol column in its header row"
            )
        symbols.append(_checked(next(cell for cell in row if cell.strip()), line))
    return _found(symbols, 0)


def _table(rows: Sequence[tuple[int, list[str]]], header_at: int) -> SymbolList:
    header = [cell.strip().lower() for cell in rows[header_at][1]]
    column = next(header.index(name) for name in SYMBOL_COLUMNS if name in header)
    asset_class = header.index("asset class") if "asset class" in header else None
    width = len(header)
    symbols: list[str] = []
    skipped = 0
    for line, row in rows[header_at + 1 :]:
        if _blank(row):
            break
        row = row + [""] * (width - len(row))
        ticker = row[column].strip()
        kind = (
            row[asset_class].strip() if asset_class is not None and asset_class < len(row) else ""
        )
        if ticker in SKIPPED_TICKERS or (asset_class is not None and kind.lower() != "equity"):
            skipped += 1
            continue
        symbols.append(_checked(ticker, line))
    return _found(symbols, skipped)


def _found(symbols: list[str], skipped: int) -> SymbolList:
    if not symbols:
        raise InvalidInput("the file names no symbol")
    return SymbolList(list(dict.fromkeys(symbols)), skipped)

"""Plain inserts of many rows, off SQLAlchemy's per-row parameter processing; long id
lists as one parameter (``ids_in``).

For hot paths only (the delivery worker's attempt log): PostgreSQL gets ``COPY … FROM
STDIN``; SQLite gets the compiled ``INSERT`` and the driver's ``executemany`` with
tuples, each value already in SQLAlchemy's storage format (the column type's bind
processor, so rows read back through the ORM exactly as if it had written them).
Both run on the caller's connection, inside its transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    String,
    Table,
    any_,
    bindparam,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY


def insert_rows(
    connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` (tuples in ``columns`` order) into ``table``."""
    if not rows:
        return
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        names = ", ".join(columns)
        statement = f"COPY {table.name} ({names}) FROM STDIN"
        with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[union-attr]
            for row in rows:
                copy.write_row(row)
        return
    compiled = insert(table).compile(dialect=connection.dialect, column_keys=list(columns))
    order = [columns.index(name) for name in compiled.positiontup or []]
    processors = [table.c[columns[i]].type.bind_processor(connection.dialect) for i in order]
    cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(
            str(compiled),
            [
                tuple(
                    value if process is None or value is None else process(value)
                    for value, process in zip((row[i] for i in order), processors, strict=True)
                )
                for row in rows
            ],
        )
    finally:
        cursor.close()


def ids_in(
    connection: Connection, column: ColumnElement[int], ids: list[int]
) -> ColumnElement[bool]:
    """``column IN ids`` with the ids as one parameter (an array on PostgreSQL, a JSON
    array read by ``json_each`` on SQLite), so a long list costs one bound value."""
    if connection.dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(BigInteger)))
    values = select(literal_column("value", BigInteger)).select_from(
        func.json_each(bindparam(None, json.dumps(ids), type_=String))
    )
    return column.in_(values.scalar_subquery())

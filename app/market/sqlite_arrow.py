"""Arrow reads of a SQLite store, in a child process of their own.

The ADBC SQLite driver brings its own copy of SQLite. Two copies of SQLite in one
process corrupt each other's view of a store: POSIX locks belong to the process, so
when one copy closes its file the other's locks are gone, and the copy that believes
it is the last connection checkpoints and removes the WAL under the other's readers
(measured here: "database disk image is malformed" in the serving process's next
read). So the driver runs in a child process (``python -m app.market.sqlite_arrow
PATH``) that holds one read transaction for its whole life; the parent sends it one
SQL statement a line and reads each result back as an Arrow IPC stream, preceded by a
status line (``ok`` or ``error: reason``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import pyarrow as pa

# SQLite's wait for a lock, as the engine's connections have it: a WAL reader meets
# one only while the log is recovered.
BUSY_TIMEOUT_MS = 30_000


class ChildReader:
    """The parent's end: ``table(sql)`` is the statement's result as an Arrow table."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process

    def table(self, sql: str) -> pa.Table:
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        stdin.write(json.dumps(sql).encode() + b"\n")
        stdin.flush()
        status = stdout.readline().decode().rstrip("\n")
        if status != "ok":
            reason = status.removeprefix("error: ") or "it exited"
            raise RuntimeError(f"the Arrow reader failed: {reason}")
        return pa.ipc.open_stream(stdout).read_all()


@contextmanager
def reading(database: str) -> Iterator[ChildReader]:
    """A child process reading the SQLite store at ``database`` (a path, or a ``file:``
    URI) in one read transaction, from its first statement until this context ends."""
    process = subprocess.Popen(
        [sys.executable, "-m", "app.market.sqlite_arrow", database],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        yield ChildReader(process)
    finally:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


def serve(database: str, requests: IO[bytes], replies: IO[bytes]) -> None:
    """The child's loop: one statement a line until end of input, all in one read
    transaction (autocommit off), each answered on ``replies``.

    The driver's own handles, not its DB-API module: that one imports
    ``pyarrow.dataset`` and with it pandas, which tripled the child's start.
    """
    import adbc_driver_manager
    import adbc_driver_sqlite

    database_handle = adbc_driver_sqlite.connect(database)
    connection = adbc_driver_manager.AdbcConnection(database_handle)
    try:
        connection.set_autocommit(False)
        _run(connection, f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        for line in requests:
            try:
                table = _run(connection, json.loads(line))
            except Exception as exc:  # reported to the parent, which raises
                reason = " ".join(str(exc).split()) or type(exc).__name__
                replies.write(f"error: {reason}\n".encode())
                replies.flush()
                continue
            replies.write(b"ok\n")
            with pa.ipc.new_stream(replies, table.schema) as writer:
                writer.write_table(table)
            replies.flush()
        connection.rollback()
    finally:
        connection.close()
        database_handle.close()


def _run(connection: Any, sql: str) -> pa.Table:
    import adbc_driver_manager

    statement = adbc_driver_manager.AdbcStatement(connection)
    try:
        statement.set_sql_query(sql)
        stream, _ = statement.execute_query()
        return pa.RecordBatchReader._import_from_c(stream.address).read_all()
    finally:
        statement.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.stdin.buffer, sys.stdout.buffer)

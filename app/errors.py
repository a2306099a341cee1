"""The one error base. Each domain error carries its HTTP status; one handler renders
it as ``application/problem+json`` (RFC 9457) and the CLI prints its message on one line.

    CrosswatchError            status 500 unless overridden
    ├── NotFound               404  (unknown symbol, subscription, …)
    ├── Conflict               409
    ├── InvalidInput           422  (bad parameters that passed schema validation)
    │   └── CsvFormatError     422  (app.market.csvfile)
    └── Unavailable            503  (store unreachable, migrations pending)
"""

from __future__ import annotations


class CrosswatchError(Exception):
    status: int = 500
    title: str = "Internal error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(CrosswatchError):
    status = 404
    title = "Not found"


class Conflict(CrosswatchError):
    status = 409
    title = "Conflict"


class InvalidInput(CrosswatchError):
    status = 422
    title = "Invalid input"


class Unavailable(CrosswatchError):
    status = 503
    title = "Service unavailable"

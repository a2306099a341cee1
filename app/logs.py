"""Logging set-up: one line per record, ``key=value`` text or JSON by setting.

Every line passes through :func:`redact` last, whatever produced it (message, extras,
tracebacks): bearer tokens, ``Authorization`` values, webhook secrets (``whsec_…``),
API keys (``cw_…``), ``apikey=``/``api_key=`` URL parameters and passwords in
database URLs never reach the log.

Lines are plain text: terminal escape codes are removed (uvicorn's ``color_message``
copy of its message is dropped), so neither a log file nor a reader's terminal gets
colour codes or control sequences from a message.

Every line is bounded too: the message, the traceback and each extra are cut in the
middle past a few KB (an over-long line of a traceback first), after redaction, so a
statement that failed with 500,000 bound values logs its head and its end, not
megabytes of SQL parameters.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

from app.settings import Settings

# ``color_message``: uvicorn's copy of the message with colour codes, never an extra.
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
# ANSI/VT100 escape sequences (CSI ... final byte, or ESC and one character).
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-Z\\-_])")
MASK = "[redacted]"
# Each pattern keeps its group 1 (the label) and masks the rest. A value stops at
# whitespace, quotes, commas, ``&`` and closing brackets so JSON stays valid; a value
# already masked is left alone, so redacting twice changes nothing.
_VALUE = r"(?!\[redacted\])[^\s\"'&,;)}\]]+"
_SECRETS = [
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token)\s+)?" + _VALUE),
    re.compile(r"(?i)(bearer\s+)" + _VALUE),
    re.compile(r"(whsec_)[A-Za-z0-9+/=_-]+"),
    re.compile(r"(?<![A-Za-z0-9])(cw_)[A-Za-z0-9_-]{8,}"),
    re.compile(r"(?i)((?:^|[?&;,{\s\"'])api_?key[\"']?\s*[=:]\s*[\"']?)" + _VALUE),
    re.compile(r"(?i)((?:token|secret|password)=)" + _VALUE),
    re.compile(r"(://[^\s:/@\"']+:)[^\s@/\"']+(?=@)"),
]


MAX_LINE_OF_TEXT = 1024
MAX_MESSAGE = 4096
MAX_TRACEBACK = 16384


def redact(text: str) -> str:
    """``text`` with every secret-looking value replaced by ``[redacted]`` and terminal
    escape sequences removed."""
    text = _ESCAPES.sub("", text)
    for pattern in _SECRETS:
        text = pattern.sub(lambda match: match.group(1) + MASK, text)
    return text


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    keep = limit - 40
    head, tail = keep * 3 // 4, keep // 4
    return f"{text[:head]} …[{len(text) - head - tail} characters cut]… {text[-tail:]}"


def bounded(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` redacted, each line cut to :data:`MAX_LINE_OF_TEXT` characters if it has
    several, then the whole cut to about ``limit`` (both keep the head and the end)."""
    text = redact(text)
    if len(text) <= limit:
        return text
    if "\n" in text:
        text = "\n".join(_cut(line, MAX_LINE_OF_TEXT) for line in text.split("\n"))
    return _cut(text, limit)


def _json_extra(value: Any) -> Any:
    """An extra as JSON keeps its shape unless it is long (then: bounded text)."""
    if isinstance(value, str):
        return bounded(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    text = json.dumps(value, default=str)
    return value if len(text) <= MAX_MESSAGE else bounded(text)


# uvicorn logs its start-up and shutdown as ``uvicorn.error``: not errors.
_NAMES = {"uvicorn.error": "uvicorn"}


class _BoundedFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        copy = logging.makeLogRecord(record.__dict__)
        copy.message = bounded(record.message)
        copy.name = _NAMES.get(record.name, record.name)
        return super().formatMessage(copy)

    def formatException(self, ei: Any) -> str:
        return bounded(super().formatException(ei), MAX_TRACEBACK)

    def formatStack(self, stack_info: str) -> str:
        return bounded(super().formatStack(stack_info), MAX_TRACEBACK)


class _JsonFormatter(_BoundedFormatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": _NAMES.get(record.name, record.name),
            "msg": bounded(record.getMessage()),
        }
        body.update({k: _json_extra(v) for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(body, default=str))


class _TextFormatter(_BoundedFormatter):
    def format(self, record: logging.LogRecord) -> str:
        # A traceback another handler formatted first is cached unbounded on the record.
        fresh = logging.makeLogRecord(record.__dict__)
        fresh.exc_text = None
        line = super().format(fresh)
        extra = " ".join(
            f"{k}={bounded(str(v))}" for k, v in record.__dict__.items() if k not in _RESERVED
        )
        return redact(f"{line} {extra}" if extra else line)


def configure(settings: Settings, *, at_least: int = logging.NOTSET) -> None:
    """Send every log record to stderr, formatted, redacted and bounded; records below
    ``CROSSWATCH_LOG_LEVEL`` (or ``at_least``, if higher) are dropped."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    level = max(logging.getLevelNamesMapping()[settings.log_level], at_least)
    root.setLevel(level)
    # APScheduler narrates each job it adds at INFO; the scheduler logs its own
    # "scheduler started next_poll=…" line, so its chatter is shown only at DEBUG.
    logging.getLogger("apscheduler").setLevel(
        logging.DEBUG if level == logging.DEBUG else logging.WARNING
    )

"""Logging set-up: one line per record, ``key=value`` text or JSON by setting.

Every line passes through :func:`redact` last, whatever produced it (message, extras,
tracebacks): bearer tokens, ``Authorization`` values, webhook secrets (``whsec_…``),
API keys (``cw_…``), ``apikey=``/``api_key=`` URL parameters and passwords in
database URLs never reach the log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

from app.settings import Settings

_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
MASK = "[redacted]"
# Each pattern keeps its group 1 (the label) and masks the rest. A value stops at
# whitespace, quotes, commas, ``&`` and closing brackets so JSON stays valid.
_VALUE = r"[^\s\"'&,;)}\]]+"
_SECRETS = [
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token)\s+)?" + _VALUE),
    re.compile(r"(?i)(bearer\s+)" + _VALUE),
    re.compile(r"(whsec_)[A-Za-z0-9+/=_-]+"),
    re.compile(r"(?<![A-Za-z0-9])(cw_)[A-Za-z0-9_-]{8,}"),
    re.compile(r"(?i)((?:^|[?&;,{\s\"'])api_?key[\"']?\s*[=:]\s*[\"']?)" + _VALUE),
    re.compile(r"(?i)((?:token|secret|password)=)" + _VALUE),
    re.compile(r"(://[^\s:/@\"']+:)[^\s@/\"']+(?=@)"),
]


def redact(text: str) -> str:
    """``text`` with every secret-looking value replaced by ``[redacted]``."""
    for pattern in _SECRETS:
        text = pattern.sub(lambda match: match.group(1) + MASK, text)
    return text


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        body.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED})
        if record.exc_info:
            body["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(body, default=str))


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in _RESERVED)
        return redact(f"{line} {extra}" if extra else line)


def configure(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)

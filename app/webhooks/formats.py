"""Chat-ready bodies: an event rendered for a Slack or Discord incoming webhook.

Pure functions of the stored ``Event`` object (the JSON :func:`delivery_queue.event_json`
serialises). Each event becomes one readable line, or for a ``daily_brief`` its
Markdown (``data.text``; before the brief carries one, a summary of its lines).
:func:`chat_body` wraps that text as the service expects: Slack ``{"text": …}``
(``&``, ``<`` and ``>`` escaped, Markdown headings and bold as Slack's ``*bold*``),
Discord ``{"content": …}`` cut on a line boundary to at most 2,000 characters, with
mentions switched off. Neither renders Markdown tables, so both get each table as
aligned columns in a code block. Rendering never fails: a type it does not know, or data not
shaped as expected, gets a generic line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from app.webhooks.schemas import WebhookFormat

#: Discord refuses a ``content`` longer than this (400).
DISCORD_LIMIT = 2000
#: Slack truncates a message's ``text`` past this; cut it cleanly first.
SLACK_LIMIT = 40_000
ELLIPSIS = "…"
FENCE = "```"

Data = Mapping[str, Any]


def chat_body(fmt: WebhookFormat | str, event_json: bytes) -> bytes:
    """The exact bytes sent to a ``slack`` or ``discord`` subscription for one event."""
    event = json.loads(event_json)
    text = fence_tables(render_text(event))
    if fmt == WebhookFormat.slack:
        body: dict[str, Any] = {"text": truncate(slack_markup(text), SLACK_LIMIT)}
    elif fmt == WebhookFormat.discord:
        body = {"content": truncate(text, DISCORD_LIMIT), "allowed_mentions": {"parse": []}}
    else:
        raise ValueError(f"{fmt!r} is not a chat format")
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def truncate(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters; else its whole lines that fit, then a
    line "…" (a code block left open is closed first); when even the first line is too
    long, that line cut, ending "…"."""
    if len(text) <= limit:
        return text
    kept: list[str] = []
    size, fenced = -1, False  # -1: the first line has no newline before it
    for line in text.split("\n"):
        fenced_after = fenced != line.startswith(FENCE)
        tail = len(f"\n{FENCE}\n{ELLIPSIS}") if fenced_after else len(f"\n{ELLIPSIS}")
        if size + 1 + len(line) + tail > limit:
            break
        kept.append(line)
        size, fenced = size + 1 + len(line), fenced_after
    if fenced and kept and kept[-1].startswith(FENCE):
        kept.pop()  # a block opened by the last line kept would be empty
        fenced = False
    if not kept:
        return text[: limit - 1].rstrip() + ELLIPSIS
    closing = f"\n{FENCE}" if fenced else ""
    return "\n".join(kept).rstrip() + closing + "\n" + ELLIPSIS


_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_ALIGN_CELL = re.compile(r"^:?-+:?$")


def fence_tables(text: str) -> str:
    """Each Markdown table (a header row, an alignment row, its rows) as a code block of
    columns padded to align, right-aligned where the table says ``--:``."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        end = i
        while end < len(lines) and _TABLE_ROW.match(lines[end]):
            end += 1
        rows = [_cells(line) for line in lines[i:end]]
        if len(rows) >= 2 and all(_ALIGN_CELL.match(cell) for cell in rows[1]):
            out += [FENCE, *_aligned(rows[0], rows[1], rows[2:]), FENCE]
            i = end
        else:
            out.append(lines[i])
            i += 1
    return "\n".join(out)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip()[1:-1].split("|")]


def _aligned(header: list[str], aligns: list[str], body: list[list[str]]) -> list[str]:
    columns = len(header)
    rows = [header, *([*row, *[""] * columns][:columns] for row in body)]
    widths = [max(len(row[c]) for row in rows) for c in range(columns)]
    right = [c < len(aligns) and aligns[c].endswith(":") for c in range(columns)]

    def line(row: list[str]) -> str:
        cells = [
            row[c].rjust(widths[c]) if right[c] else row[c].ljust(widths[c]) for c in range(columns)
        ]
        return "  ".join(cells).rstrip()

    return [line(header), "  ".join("-" * w for w in widths), *map(line, rows[1:])]


_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.MULTILINE)
_BOLD = re.compile(r"\*\*(.+?)\*\*")


def slack_markup(text: str) -> str:
    """Markdown as Slack's ``mrkdwn`` shows it: its control characters escaped,
    headings and ``**bold**`` as ``*bold*`` (lists pass unchanged)."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BOLD.sub(r"*\1*", _HEADING.sub(r"**\1**", escaped))


def render_text(event: Data) -> str:
    """The event as a person reads it: one line, or the brief's Markdown."""
    renderer = _RENDERERS.get(str(event.get("type")))
    data = event.get("data")
    if renderer is not None and isinstance(data, Mapping):
        try:
            return renderer(str(event.get("symbol")), data)
        except (KeyError, TypeError, ValueError, AttributeError):
            pass  # not shaped as this type's data: the generic line says what there is
    return generic_line(event)


def generic_line(event: Data) -> str:
    """Any event: its symbol, type, session and its data's plain figures."""
    data = event.get("data")
    figures = []
    if isinstance(data, Mapping):
        figures = [
            f"{key.replace('_', ' ')} {_plain(value)}"
            for key, value in data.items()
            if key != "session" and isinstance(value, str | int | float | bool)
        ]
    head = f"{_who(str(event.get('symbol')))}{_words(str(event.get('type')))}"
    line = f"{head} on {event.get('session')}"
    return f"{line}: {', '.join(figures)}" if figures else line


def _golden(symbol: str, data: Data) -> str:
    return _cross_line(symbol, data, golden=True)


def _death(symbol: str, data: Data) -> str:
    return _cross_line(symbol, data, golden=False)


def _cross_line(symbol: str, data: Data, *, golden: bool) -> str:
    fast, slow = _averages(data["rule"])
    kind, side = ("golden", "above") if golden else ("death", "below")
    return (
        f"{symbol} {kind} cross on {data['session']}: {fast} {_num(data['fast_value'], 1)} "
        f"crossed {side} {slow} {_num(data['slow_value'], 1)}; close {_num(data['close'])}"
    )


def _approaching(symbol: str, data: Data) -> str:
    fast, slow = _averages(data["rule"])
    gap = float(data["gap_pct"])
    line = (
        f"{symbol} nears a golden cross on {data['session']}: {fast} "
        f"{_num(data['fast_value'], 1)} is {abs(gap):.2f}% below {slow} "
        f"{_num(data['slow_value'], 1)}; close {_num(data['close'])}"
    )
    trigger = data.get("trigger_close")
    return line if trigger is None else f"{line}, a close of {_num(trigger)} would cross"


def _peak(symbol: str, data: Data) -> str:
    return _turn_line(symbol, data, "peak", "high", "rise from the previous trough")


def _trough(symbol: str, data: Data) -> str:
    return _turn_line(symbol, data, "trough", "low", "decline from the previous peak")


def _turn_line(symbol: str, data: Data, kind: str, extreme: str, change: str) -> str:
    moved = (float(data["close"]) / float(data["extreme_close"]) - 1.0) * 100.0
    line = (
        f"{symbol} {kind} confirmed on {data['session']}: {extreme} "
        f"{_num(data['extreme_close'])} on {data['extreme_session']}, close "
        f"{_num(data['close'])} ({moved:+.1f}% from it)"
    )
    if data.get("change_pct") is None:
        return line
    return f"{line}; {change} {abs(float(data['change_pct'])):.1f}%"


def _brief(_symbol: str, data: Data) -> str:
    text = data.get("text")
    if isinstance(text, str) and text.strip():
        return text
    lines = [str(row["line"]) for row in data["symbols"]]
    return "\n".join([f"Daily brief for {data['session']}: {len(lines)} symbols", *lines])


def _retracted(symbol: str, data: Data) -> str:
    return (
        f"{_who(symbol)}{_words(str(data['original_type']))} of {data['session']} retracted: "
        f"{data['reason']} (event {data['original_id']})"
    )


def _snapshot(_symbol: str, data: Data) -> str:
    regimes = [
        f"{row['symbol']} {row['regime']} since {row['since_session']}" for row in data["regimes"]
    ]
    if not regimes:
        return f"Snapshot ({data['rule']}): no subscribed symbol has a stored cross"
    return f"Snapshot ({data['rule']}): " + "; ".join(regimes)


def _test(_symbol: str, data: Data) -> str:
    return f"Test delivery to subscription {data['subscription_id']}: {data['message']}"


def _watch(symbol: str, data: Data) -> str:
    direction = str(data["direction"])
    side = "above" if direction == "golden" else "below"
    # ``distance_pct``: the move still needed to the trigger (0 or below once past it).
    line = (
        f"{symbol} {direction} cross watch on {data['session']}: live price "
        f"{_num(data['live_price'])} at {_time(str(data['as_of']))} is {side} the trigger "
        f"close {_num(data['trigger_close'])} (by {abs(float(data['distance_pct'])):.2f}%)"
    )
    rule = f" ({_rule_name(data['rule'])})" if data.get("rule") else ""
    if data.get("provisional", True):
        return f"{line}; provisional until the close{rule}"
    return line + rule


def _watch_missed(symbol: str, data: Data) -> str:
    watched = f"{data['direction']} cross watch" if data.get("direction") else "cross watch"
    return (
        f"{symbol} {watched} of {data['session']} not confirmed: close "
        f"{_num(data['close'])} did not reach the trigger close {_num(data['trigger_close'])}"
    )


_RENDERERS: dict[str, Callable[[str, Data], str]] = {
    "golden_cross": _golden,
    "death_cross": _death,
    "cross_approaching": _approaching,
    "peak": _peak,
    "trough": _trough,
    "daily_brief": _brief,
    "retracted": _retracted,
    "snapshot": _snapshot,
    "test": _test,
    "cross_watch": _watch,
    "cross_watch_missed": _watch_missed,
}


def _averages(rule: Data) -> tuple[str, str]:
    """``("50-day SMA", "200-day")`` for a rule ``{fast, slow, type}``."""
    kind = str(rule.get("type", "sma")).upper()
    return f"{int(rule['fast'])}-day {kind}", f"{int(rule['slow'])}-day"


def _rule_name(rule: object) -> str:
    """A rule as ``sma 50/200``, from its dict or its key ``sma:50:200``."""
    if isinstance(rule, Mapping):
        return f"{rule.get('type', 'sma')} {rule['fast']}/{rule['slow']}"
    parts = str(rule).split(":")
    return f"{parts[0]} {parts[1]}/{parts[2]}" if len(parts) == 3 else str(rule)


def _num(value: object, places: int = 2) -> str:
    """A figure with thousands separators: ``2,210.40``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{value!r} is not a number")
    return f"{value:,.{places}f}"


def _plain(value: str | float | bool) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)


def _time(stamp: str) -> str:
    """``2025-08-06T15:00:00-04:00`` as ``15:00 -04:00`` (other text unchanged)."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is None:
        return moment.strftime("%H:%M")
    offset = moment.strftime("%z")
    return f"{moment:%H:%M} {offset[:3]}:{offset[3:]}"


def _who(symbol: str) -> str:
    """The symbol and a space, or nothing for an event about no one symbol (``*``)."""
    return "" if symbol in ("*", "None", "") else f"{symbol} "


def _words(name: str) -> str:
    return name.replace("_", " ")

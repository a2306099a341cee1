"""The daily brief as Markdown, for a person to read (``GET /v1/brief?format=markdown``,
``crosswatch brief``, the ``text`` of the poll's ``daily_brief`` event)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy.orm import Session

from app.market import repository as market
from app.signals.analysis import analyse
from app.signals.book import Snapshot
from app.signals.brief import Brief, BriefIndex, BriefUniverse, build, is_index
from app.signals.brief_cut import CutBook
from app.signals.schemas import (
    Regime,
)


def indices_markdown(session: Session, day: date, now: datetime) -> str:
    """The brief of ``day`` without its universe sections, as Markdown: what the poll's
    ``daily_brief`` event carries as ``text``. It reads the closes of the tracked
    indices only (a few symbols), whatever the number of other symbols."""
    symbols = [symbol for symbol in market.tracked_symbols(session) if is_index(symbol)]
    analysis = analyse(market.load_panel(session, symbols))
    book = CutBook(Snapshot(fingerprint={}, analysis=analysis, provenance={}))
    return markdown(build(book, session, day, now, with_universes=False))


def _num(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def _pct(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:+,.{digits}f}%"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table; columns after the first are right-aligned."""
    aligns = ["---"] + ["--:"] * (len(header) - 1)
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(aligns) + " |",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def markdown(brief: Brief) -> str:
    """The brief for a person: a table of the indices, a paragraph on each, and each
    universe's breadth and top rows."""
    rule = brief.rule
    lines = [
        f"# Crosswatch brief, {brief.session}",
        "",
        f"As of the close of {brief.session}; rule {rule.type.upper()} {rule.fast}/{rule.slow}.",
    ]
    if brief.indices:
        lines += ["", "## Indices", ""]
        lines += _table(
            ["Index", "Close", "Day", "YTD", "Regime", "Gap", "Trigger", "Flat→cross", "Drawdown"],
            [
                [
                    i.symbol + (f" ({i.session})" if i.stale else ""),
                    _num(i.close),
                    _pct(i.change_pct),
                    _pct(i.ytd_return_pct),
                    i.regime.value if i.regime else "–",
                    _pct(i.gap_pct),
                    _num(i.trigger_close),
                    "–" if i.flat_sessions_to_cross is None else str(i.flat_sessions_to_cross),
                    _pct(i.drawdown_pct, 1),
                ]
                for i in brief.indices
            ],
        )
        for index in brief.indices:
            lines += ["", f"### {index.symbol}", "", *_index_lines(index, brief.indices)]
    else:
        lines += ["", "No index is tracked."]
    for section in brief.universes:
        lines += ["", *_universe_lines(section, brief.return_sessions)]
    return "\n".join(lines) + "\n"


def _index_lines(index: BriefIndex, others: Sequence[BriefIndex]) -> list[str]:
    beside = ", ".join(
        f"{o.symbol} {_pct(o.ytd_return_pct)}" for o in others if o.symbol != index.symbol
    )
    ytd = f"year to date {_pct(index.ytd_return_pct)}" + (f" ({beside})" if beside else "")
    lines = [f"- Close {_num(index.close)} ({_pct(index.change_pct)} on the day); {ytd}."]
    if index.regime is not None:
        since = ""
        if index.last_cross is not None:
            kind = index.last_cross.type.replace("_", " ")
            since = (
                f" since the {kind} of {index.last_cross.session} "
                f"({index.sessions_since_cross} sessions ago)"
            )
        lines.append(
            f"- {index.regime.value.capitalize()} regime{since}; "
            f"gap {_pct(index.gap_pct)} (fast {_num(index.fast_value)}, "
            f"slow {_num(index.slow_value)})."
        )
        lines.append(_watch_line(index))
    else:
        lines.append("- No regime yet: too little history for the slow average.")
    drawdown = index.drawdown_pct
    lines.append(
        f"- Drawdown {_pct(drawdown, 1)} from the peak of {_num(index.peak.close)} "
        f"({index.peak.session})."
        if drawdown
        else f"- At its peak ({_num(index.peak.close)}, {index.peak.session})."
    )
    trough = index.last_trough
    if trough is not None:
        after = ", ".join(
            f"{_pct(value, 1)} after {horizon}"
            for horizon, value in trough.forward_returns.model_dump(by_alias=True).items()
            if value is not None
        )
        lines.append(
            f"- Last trough {_num(trough.close)} on {trough.session} "
            f"({_pct(trough.change_pct, 1)} from the prior peak)"
            + (f"; then {after} sessions." if after else "; no forward return yet.")
        )
    return lines


def _watch_line(index: BriefIndex) -> str:
    cross = "golden" if index.regime == Regime.death else "death"
    flat = (
        f"at a flat {_num(index.close)} it comes in {index.flat_sessions_to_cross} sessions"
        if index.flat_sessions_to_cross is not None
        else "a flat close would not make it"
    )
    if index.trigger_close is None:
        return (
            f"- {cross.capitalize()}-cross watch: no close would make the cross next "
            f"session; {flat}."
        )
    side = "below" if index.trigger_close < index.close else "above"
    return (
        f"- {cross.capitalize()}-cross watch: a close at {_num(index.trigger_close)} "
        f"({_num(index.trigger_distance_pct)}% {side} this close) makes the cross next "
        f"session; {flat}."
    )


def _universe_lines(section: BriefUniverse, return_sessions: int) -> list[str]:
    title = f"Universe {section.universe}" if section.universe else "All tracked symbols"
    lines = [f"## {title}", ""]
    b = section.breadth
    if b is None:
        lines.append("No member has a close this session.")
    else:
        lines.append(
            f"Breadth of {b.members:,} members: {_num(b.above_fast_pct, 1)}% above the fast "
            f"average, {_num(b.above_slow_pct, 1)}% above the slow, "
            f"{_num(b.golden_regime_pct, 1)}% in a golden regime; "
            f"{b.golden_crosses} golden and {b.death_crosses} death crosses; "
            f"{b.new_highs} new 252-session highs, {b.new_lows} new lows."
        )
    if section.closest_to_golden_cross:
        lines += ["", "Closest to a golden cross:", ""]
        lines += _table(
            ["Symbol", "Close", "Trigger", "Distance", "Flat→cross", "Gap"],
            [
                [
                    r.symbol,
                    _num(r.close),
                    _num(r.trigger_close),
                    _num(r.trigger_distance_pct) + "%",
                    "–" if r.flat_sessions_to_cross is None else str(r.flat_sessions_to_cross),
                    _pct(r.gap_pct),
                ]
                for r in section.closest_to_golden_cross
            ],
        )
    for title, rows in (
        (f"Top {return_sessions}-session gainers", section.top_gainers),
        (f"Top {return_sessions}-session decliners", section.top_decliners),
    ):
        if rows:
            lines += ["", f"{title}:", ""]
            lines += _table(
                ["Symbol", "Close", "Return", "Day", "Regime"],
                [
                    [
                        r.symbol,
                        _num(r.close),
                        _pct(r.return_pct),
                        _pct(r.change_pct),
                        r.regime.value if r.regime else "–",
                    ]
                    for r in rows
                ],
            )
    return lines

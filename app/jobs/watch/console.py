"""A check's findings as lines for a person (``crosswatch watch``)."""

from __future__ import annotations

from app.jobs.watch.check import WatchReport


def describe(report: WatchReport, within_pct: float, *, explicit: bool) -> list[str]:
    """One line per (symbol, rule) checked, for a person: the live price, the trigger,
    the move still needed, and the event written or not. ``explicit``: the symbols were
    named, so those that could not be watched are listed too, with why."""
    lines = []
    for finding in report.findings:
        c = finding.candidate
        head = f"{c.symbol} {c.rule.key} {c.direction} watch"
        if finding.error is not None:
            lines.append(f"{head}: trigger {c.trigger_close:,.2f}; no live price: {finding.error}")
            continue
        assert finding.quote is not None and finding.distance_pct is not None
        figures = (
            f"live {finding.quote.price:,.2f} at {finding.quote.as_of.isoformat()}, "
            f"trigger {c.trigger_close:,.2f}, distance {finding.distance_pct:+.2f}%"
        )
        if finding.written and finding.event is not None:
            outcome = f"cross_watch written ({finding.event.id})"
        elif finding.event is not None:
            outcome = f"cross_watch already written ({finding.event.id})"
        else:
            outcome = "short of the trigger, no event"
        lines.append(f"{head}: {figures}: {outcome}")
    if explicit:
        lines.extend(
            f"{c.symbol} {c.rule.key}: not watched: {c.skipped}"
            for c in report.candidates
            if c.skipped is not None
        )
    elif not report.findings:
        tracked = len({c.symbol for c in report.candidates})
        lines.append(
            f"no symbol within {within_pct:g}% of its trigger close on {report.session} "
            f"({tracked} tracked)"
        )
    return lines

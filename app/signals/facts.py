"""Event facts: the one derivation of crosses, approaches and turns and of their payloads,
for the full path (:func:`facts_of`, the scan) and the daily path
(:mod:`app.signals.daily_path`), which only differ in where the figures come from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from app.signals import kernel
from app.signals.analysis import CROSS_TYPES, Analysis, Rule, TurnRule, num, turns_of


@dataclass(frozen=True)
class Fact:
    """An event implied by the closes: ``session`` is when it became known."""

    type: str
    session: date
    rule: str
    data: dict[str, Any]


def cross_fact(
    rule: Rule, sign: int, session: date, close: float, fast: float, slow: float, seen: int
) -> Fact:
    """A golden (``sign`` 1) or death (-1) cross on ``session``, the ``seen``-th stored
    session of the symbol, with that session's close and averages."""
    return Fact(
        CROSS_TYPES[sign],
        session,
        rule.key,
        {
            "close": float(close),
            "fast_value": float(fast),
            "slow_value": float(slow),
            "rule": rule.as_dict(),
            "sessions_seen": seen,
        },
    )


def approach_fact(
    rule: Rule,
    session: date,
    close: float,
    fast: float,
    slow: float,
    trigger: float | None,
    seen: int,
) -> Fact:
    """A ``cross_approaching`` on ``session`` (see :func:`approach_step`)."""
    fast, slow = float(fast), float(slow)
    return Fact(
        "cross_approaching",
        session,
        rule.key,
        {
            "close": float(close),
            "gap_pct": (fast / slow - 1.0) * 100.0,
            "fast_value": fast,
            "slow_value": slow,
            "trigger_close": trigger,
            "rule": rule.as_dict(),
            "sessions_seen": seen,
        },
    )


def approach_trigger(
    rule: Rule, window: npt.NDArray[np.float64], fast: float, slow: float
) -> float | None:
    """The trigger close as of one session: from the ``rule.slow`` closes ending there
    (``window``, oldest first) for SMAs, from that session's averages for EMAs. One row
    at a time: the kernel's SMA trigger sums with a reduction whose rounding depends on
    how many rows it sees."""
    if rule.kind == "sma":
        tail = window[None, window.size - rule.slow :]
        return num(kernel.trigger_close_sma(tail, rule.fast, rule.slow)[0])
    return num(
        kernel.trigger_close_ema(np.array([fast]), np.array([slow]), rule.fast, rule.slow)[0]
    )


def turn_fact(
    turn_rule: TurnRule,
    turn_type: str,
    session: date,
    extreme_session: date,
    extreme_close: float,
    close: float,
    change_pct: float | None,
    sessions_to_confirm: int,
) -> Fact:
    """A ``peak`` or ``trough`` confirmed on ``session`` (at ``close``), its extreme
    ``sessions_to_confirm`` sessions before, ``change_pct`` from the previous extreme."""
    return Fact(
        turn_type,
        session,
        turn_rule.key,
        {
            "extreme_session": extreme_session.isoformat(),
            "extreme_close": float(extreme_close),
            "close": float(close),
            "change_pct": change_pct,
            "sessions_to_confirm": sessions_to_confirm,
            "rule": turn_rule.as_dict(),
        },
    )


def facts_of(analysis: Analysis, row: int) -> list[Fact]:
    """Every event the closes imply for ``row`` under the analysis's rules."""
    s = analysis.signals
    closes = analysis.panel.closes
    rule = analysis.rule
    first = analysis.first_index(row)
    facts: list[Fact] = []
    for index in np.flatnonzero(s.cross[row]).tolist():
        facts.append(
            cross_fact(
                rule,
                int(s.cross[row, index]),
                analysis.session_of(row, index),
                closes[row, index],
                s.fast_ma[row, index],
                s.slow_ma[row, index],
                index - first + 1,
            )
        )
    for index in np.flatnonzero(analysis.approaches.at[row]).tolist():
        fast, slow = float(s.fast_ma[row, index]), float(s.slow_ma[row, index])
        facts.append(
            approach_fact(
                rule,
                analysis.session_of(row, index),
                closes[row, index],
                fast,
                slow,
                approach_trigger(rule, closes[row, : index + 1], fast, slow),
                index - first + 1,
            )
        )
    for turn in turns_of(analysis, row):
        facts.append(
            turn_fact(
                analysis.turn_rule,
                turn["type"],
                turn["confirmed_session"],
                turn["session"],
                turn["close"],
                turn["confirmed_close"],
                turn["change_pct"],
                turn["sessions_to_confirm"],
            )
        )
    facts.sort(key=lambda fact: (fact.session, fact.type))
    return facts

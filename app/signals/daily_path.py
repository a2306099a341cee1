"""The daily path of detection: each symbol's kernel state carried from one write to the
next, advanced one session at a time.

Pure (no database): :func:`carried_from_full` takes the state out of a full-history analysis,
:func:`step` advances it by the sessions a write appended and returns the facts those
sessions imply. The work per session is the kernel's :func:`~app.signals.kernel.advance`
over the newest ``slow`` closes of all the symbols at once: it does not grow with the
history. The facts are exactly those :func:`app.signals.facts.facts_of` finds on the
same sessions of the full history: the kernel's daily path reproduces the full
recompute bit for bit, and the rest is carried here:

- the ``cross_approaching`` state of :func:`app.signals.approach.approach_step` (the
  rule, shared with the full path) as two flags per rule, *armed* and *done*;
- the date and close of each session the zigzag state points at (a turn's extreme
  may lie years back), and the previous turn's extreme close (its ``change_pct``);
- the newest closes (the tail ``advance`` needs).

Positions count stored sessions from the symbol's first one, so each symbol keeps its
own frame; :func:`step` shifts them into one frame to advance many symbols together.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from app.market.bars import Bar
from app.market.repository import ClosePanel
from app.signals import kernel
from app.signals.analysis import (
    DEFAULT_RULE,
    DEFAULT_TURNS,
    REGIMES,
    TURN_TYPES,
    Analysis,
    Rule,
    num,
    pct,
    signals_of,
)
from app.signals.approach import approach_step
from app.signals.facts import Fact, approach_fact, approach_trigger, cross_fact, turn_fact

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# DailyState fields holding session positions (-1, or ``sessions`` for ``first``, mean
# none): shifted between a symbol's own frame and a batch's common frame.
_POSITIONS = ("first", "last_cross", "peak_index")
_ZIGZAG_POSITIONS = ("extreme_index", "high_index", "low_index")


@dataclass(frozen=True)
class Newest:
    """The default rule's figures on a symbol's newest stored session, as
    :func:`app.signals.analysis.signal_of` gives them, and who produced that bar: one
    line of the daily brief, kept so that the brief needs no second look at the store."""

    session: date
    close: float
    regime: str | None
    gap_pct: float | None
    trigger_close: float | None
    drawdown_pct: float | None
    source: str | None = None
    instrument: str | None = None


@dataclass(frozen=True)
class Carried:
    """One symbol's detection state after its newest stored session.

    ``version``: the symbol's data version this state reflects (None until known).
    ``last``/``count``: newest stored session and the number of stored sessions.
    ``tail``: the newest closes, oldest first (at least the largest slow window).
    ``states``: the kernel's one-row :class:`~app.signals.kernel.DailyState` per rule
    key, positions counted from the symbol's first session. ``approach``: per rule key,
    the (armed, done) flags of ``cross_approaching`` in the current death regime.
    ``extremes``: (session, close) of each position the zigzag state points at.
    ``last_turn_close``: the newest confirmed turn's extreme close (NaN: none yet).
    ``newest``: the default rule's figures on ``last`` (None when not derived).
    """

    version: int | None
    last: date
    count: int
    tail: FloatArray
    states: dict[str, kernel.DailyState]
    approach: dict[str, tuple[bool, bool]]
    extremes: dict[int, tuple[date, float]]
    last_turn_close: float
    newest: Newest | None = None

    def serves(self, rules: Sequence[Rule]) -> bool:
        """Whether this state can advance every rule in ``rules``."""
        return all(rule.key in self.states for rule in rules) and self.tail.size >= max(
            rule.slow for rule in rules
        )


def _shift(
    state: kernel.DailyState, rows: IntArray, delta: IntArray, sessions: int
) -> kernel.DailyState:
    """The ``rows`` of ``state`` with their positions moved by ``delta`` (per row)."""

    def moved(values: IntArray) -> IntArray:
        taken = values[rows]
        return np.where(taken >= 0, taken + delta, taken).astype(np.int64)

    zigzag = state.zigzag
    zigzag_values: dict[str, Any] = {
        f.name: (
            moved(getattr(zigzag, f.name))
            if f.name in _ZIGZAG_POSITIONS
            else getattr(zigzag, f.name)[rows].copy()
        )
        for f in fields(zigzag)
    }
    changed: dict[str, Any] = {
        f.name: moved(getattr(state, f.name))
        if f.name in _POSITIONS
        else getattr(state, f.name)[rows].copy()
        for f in fields(state)
        if isinstance(getattr(state, f.name), np.ndarray)
    }
    return replace(state, sessions=sessions, zigzag=kernel.ZigzagState(**zigzag_values), **changed)


def _split(
    state: kernel.DailyState, delta: IntArray, sessions: IntArray
) -> list[kernel.DailyState]:
    """Each row of ``state`` as a one-row state of its own, positions moved by ``delta``
    and ``sessions`` seen (per row): :func:`_shift` of every row, moved all at once."""
    every = np.arange(delta.size)
    shifted = _shift(state, every, delta, state.sessions)
    zigzag = {f.name: getattr(shifted.zigzag, f.name) for f in fields(shifted.zigzag)}
    arrays = {
        f.name: getattr(shifted, f.name)
        for f in fields(shifted)
        if isinstance(getattr(shifted, f.name), np.ndarray)
    }
    # The rule's parameters, shared: built directly, not by replace(), once per row.
    shared = {
        f.name: getattr(shifted, f.name)
        for f in fields(shifted)
        if f.name not in arrays and f.name not in ("sessions", "zigzag")
    }
    split = []
    for row, seen in zip(every.tolist(), sessions.tolist(), strict=True):
        own = kernel.ZigzagState(**{name: value[row : row + 1] for name, value in zigzag.items()})
        rows = {name: value[row : row + 1] for name, value in arrays.items()}
        split.append(kernel.DailyState(**shared, sessions=seen, zigzag=own, **rows))
    return split


def _concat(
    states: Sequence[kernel.DailyState], delta: IntArray, sessions: int
) -> kernel.DailyState:
    """One state of many one-row states, positions moved by ``delta`` (per row)."""
    first = states[0]
    zigzag = kernel.ZigzagState(
        **{
            f.name: np.concatenate([getattr(s.zigzag, f.name) for s in states])
            for f in fields(first.zigzag)
        }
    )
    arrays: dict[str, Any] = {
        f.name: np.concatenate([getattr(s, f.name) for s in states])
        for f in fields(first)
        if isinstance(getattr(first, f.name), np.ndarray)
    }
    joined = replace(first, zigzag=zigzag, **arrays)
    return _shift(joined, np.arange(len(states)), delta, sessions)


def carried_from_full(
    panel: ClosePanel, rules: Sequence[Rule], analyses: dict[str, Analysis]
) -> dict[str, Carried]:
    """The carried state of every symbol of ``panel`` long enough for every rule.

    ``analyses``: the full-history analysis of ``panel`` under each rule's key (the
    first rule's turns are the turns).
    """
    if any(rule.key not in analyses for rule in rules):
        return {}
    closes = panel.closes
    width = closes.shape[1]
    lengths = np.count_nonzero(~np.isnan(closes), axis=1).astype(np.int64)
    longest = max(rule.slow for rule in rules)
    rows = np.flatnonzero(lengths >= longest).astype(np.int64)
    if not rows.size:
        return {}
    offsets = width - lengths[rows]
    states = {
        rule.key: kernel.state_from_full(
            closes[rows],
            rule.fast,
            rule.slow,
            rule.kind,
            DEFAULT_TURNS.decline,
            DEFAULT_TURNS.rebound,
        )
        for rule in rules
    }
    turns = analyses[rules[0].key].turns
    last_turn: dict[int, float] = {}
    for row, close in zip(turns.symbol.tolist(), turns.close.tolist(), strict=True):
        last_turn[row] = close  # sorted by (symbol, session): the newest wins
    default = analyses.get(DEFAULT_RULE.key)
    figures = signals_of(default, rows) if default is not None else [None] * rows.size
    carried: dict[str, Carried] = {}
    for position, row in enumerate(rows.tolist()):
        count = int(lengths[row])
        offset = int(offsets[position])
        own = {
            key: _shift(state, np.array([position]), np.array([-offset]), count)
            for key, state in states.items()
        }
        zigzag = own[rules[0].key].zigzag
        extremes = {}
        for name in _ZIGZAG_POSITIONS:
            index = int(getattr(zigzag, name)[0])
            if index >= 0:
                day: date = panel.sessions[row, index + offset].astype(object)
                extremes[index] = (day, float(closes[row, index + offset]))
        approach = {}
        for rule in rules:
            state = analyses[rule.key].approaches
            approach[rule.key] = (bool(state.armed[row]), bool(state.done[row]))
        newest: date = panel.sessions[row, width - 1].astype(object)
        carried[panel.symbols[row]] = Carried(
            version=None,
            last=newest,
            count=count,
            tail=closes[row, width - longest :].copy(),
            states=own,
            approach=approach,
            extremes=extremes,
            last_turn_close=last_turn.get(row, float("nan")),
            newest=newest_of(figures[position]),
        )
    return carried


def newest_of(
    signal: dict[str, Any] | None, source: str | None = None, instrument: str | None = None
) -> Newest | None:
    """The :class:`Newest` of a signal as :func:`app.signals.analysis.signals_of` gives
    it (``None`` for a symbol without one), with who produced its bar."""
    if signal is None:
        return None
    return Newest(
        signal["session"],
        signal["close"],
        signal["regime"],
        signal["gap_pct"],
        signal["trigger_close"],
        signal["drawdown_pct"],
        source,
        instrument,
    )


def step(
    items: Sequence[tuple[Sequence[Bar], Carried]], rules: Sequence[Rule]
) -> list[tuple[list[Fact], Carried]]:
    """Advance each carried state by its appended bars (newer than ``last``, in order).

    Returns, per item, the facts on the appended sessions and the state after them.
    """
    current = [entry for _, entry in items]
    found: list[list[Fact]] = [[] for _ in items]
    longest = max(len(bars) for bars, _ in items)
    for position in range(longest):
        active = [i for i, (bars, _) in enumerate(items) if len(bars) > position]
        advanced = _advance(
            [current[i] for i in active], [items[i][0][position] for i in active], rules
        )
        for i, (facts, entry) in zip(active, advanced, strict=True):
            found[i].extend(facts)
            current[i] = entry
    for facts in found:
        facts.sort(key=lambda fact: (fact.session, fact.type))
    return list(zip(found, current, strict=True))


def _advance(
    entries: Sequence[Carried], bars: Sequence[Bar], rules: Sequence[Rule]
) -> list[tuple[list[Fact], Carried]]:
    """One new session for every entry (one bar each): facts and next states."""
    counts = np.array([entry.count for entry in entries], dtype=np.int64)
    top = int(counts.max())
    offsets = top - counts
    closes = np.array([bar.close for bar in bars], dtype=np.float64)
    facts: list[list[Fact]] = [[] for _ in entries]
    states: list[dict[str, kernel.DailyState]] = [{} for _ in entries]
    approach: list[dict[str, tuple[bool, bool]]] = [dict(e.approach) for e in entries]
    extremes = [e.extremes for e in entries]
    turn_closes = [e.last_turn_close for e in entries]
    newest: list[Newest | None] = [None] * len(entries)
    for index, rule in enumerate(rules):
        key = rule.key  # a property built on every read
        tail = np.empty((len(entries), rule.slow))
        for row, entry in enumerate(entries):
            tail[row, :-1] = entry.tail[entry.tail.size - rule.slow + 1 :]
        tail[:, -1] = closes
        before = _concat([e.states[key] for e in entries], offsets, top)
        after, latest = kernel.advance(before, tail)
        if rule == DEFAULT_RULE:
            newest = _newest_of(latest, bars)
        armed, done, approached = approach_step(
            np.array([a[key][0] for a in approach], dtype=bool),
            np.array([a[key][1] for a in approach], dtype=bool),
            before.regime == -1,
            latest.regime == -1,
            latest.gap_pct,
        )
        for row, own in enumerate(_split(after, -offsets, counts + 1)):
            states[row][key] = own
        for row, entry in enumerate(entries):
            seen = entry.count + 1
            session, close = bars[row].session, float(bars[row].close)
            fast, slow = float(latest.fast_ma[row]), float(latest.slow_ma[row])
            if latest.cross[row] != 0:
                facts[row].append(
                    cross_fact(rule, int(latest.cross[row]), session, close, fast, slow, seen)
                )
            if approached[row]:
                trigger = approach_trigger(rule, tail[row], fast, slow)
                facts[row].append(approach_fact(rule, session, close, fast, slow, trigger, seen))
            approach[row][key] = (bool(armed[row]), bool(done[row]))
            if index == 0 and latest.turn[row] != 0:
                at = int(latest.turn_session[row]) - int(offsets[row])
                day, extreme = extremes[row][at]
                change = (np.float64(extreme) / np.float64(turn_closes[row]) - 1.0) * 100.0
                facts[row].append(
                    turn_fact(
                        DEFAULT_TURNS,
                        TURN_TYPES[int(latest.turn[row])],
                        session,
                        day,
                        extreme,
                        close,
                        num(change),
                        entry.count - at,
                    )
                )
                turn_closes[row] = extreme
    result = []
    for row, entry in enumerate(entries):
        zigzag = states[row][rules[0].key].zigzag
        tracked = {}
        for name in _ZIGZAG_POSITIONS:
            at = int(getattr(zigzag, name)[0])
            if at == entry.count:
                tracked[at] = (bars[row].session, float(bars[row].close))
            elif at >= 0:
                tracked[at] = extremes[row][at]
        result.append(
            (
                facts[row],
                Carried(
                    version=entry.version,
                    last=bars[row].session,
                    count=entry.count + 1,
                    tail=np.append(entry.tail[1:], closes[row]),
                    states=states[row],
                    approach=approach[row],
                    extremes=tracked,
                    last_turn_close=turn_closes[row],
                    newest=newest[row],
                ),
            )
        )
    return result


def _newest_of(latest: kernel.Latest, bars: Sequence[Bar]) -> list[Newest | None]:
    """Each row's :class:`Newest` figures from the kernel's newest-session arrays."""
    return [
        Newest(bar.session, close, REGIMES[regime], num(gap), num(trigger), pct(drawdown))
        for bar, close, regime, gap, trigger, drawdown in zip(
            bars,
            latest.close.tolist(),
            latest.regime.tolist(),
            latest.gap_pct.tolist(),
            latest.trigger_close.tolist(),
            latest.drawdown.tolist(),
            strict=True,
        )
    ]

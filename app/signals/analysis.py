"""From kernel arrays to the product's facts: signals, crosses, turns, event facts.

Pure: a :class:`ClosePanel` in, plain records out. The kernel does the arithmetic for
all symbols at once; this module only indexes into its arrays per symbol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from app.market.repository import ClosePanel
from app.signals import kernel
from app.signals.approach import Approaches, approaches

HORIZONS = (21, 63, 126, 252)
WHIPSAW_SESSIONS = 21
Kind = Literal["sma", "ema"]


@dataclass(frozen=True)
class Rule:
    """A crossover rule: ``fast`` < ``slow`` windows of one average type."""

    fast: int = 50
    slow: int = 200
    kind: Kind = "sma"

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.fast}:{self.slow}"

    def as_dict(self) -> dict[str, Any]:
        return {"fast": self.fast, "slow": self.slow, "type": self.kind}


DEFAULT_RULE = Rule()


@dataclass(frozen=True)
class TurnRule:
    decline: float = 0.20
    rebound: float = 0.20

    @property
    def key(self) -> str:
        return f"zigzag:{_pct(self.decline)}:{_pct(self.rebound)}"

    def as_dict(self) -> dict[str, float]:
        return {"decline_pct": self.decline * 100, "rebound_pct": self.rebound * 100}


DEFAULT_TURNS = TurnRule()


def _pct(fraction: float) -> str:
    return f"{fraction * 100:g}"


def num(value: float | np.floating[Any]) -> float | None:
    """A JSON-safe float: NaN and infinities become None."""
    as_float = float(value)
    return None if math.isnan(as_float) or math.isinf(as_float) else as_float


def pct(value: float | np.floating[Any]) -> float | None:
    as_float = num(value)
    return None if as_float is None else as_float * 100.0


@dataclass(frozen=True)
class Analysis:
    """Everything the kernel says about a panel under one crossover rule and turn rule."""

    panel: ClosePanel
    rule: Rule
    turn_rule: TurnRule
    signals: kernel.Signals
    drawdown: kernel.Drawdown
    turns: kernel.Turns
    trigger: npt.NDArray[np.float64]
    flat: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int64] = field(repr=False)

    def session_of(self, row: int, index: int) -> date:
        value: date = self.panel.sessions[row, index].astype(object)
        return value

    def first_index(self, row: int) -> int:
        return int(self.panel.closes.shape[1] - self.lengths[row])

    @cached_property
    def approaches(self) -> Approaches:
        """Every ``cross_approaching`` of every row (derived once, on first use)."""
        return approaches(self.signals)


def analyse(
    panel: ClosePanel, rule: Rule = DEFAULT_RULE, turns: TurnRule = DEFAULT_TURNS
) -> Analysis:
    if panel.closes.shape[1] == 0:
        # No symbol has a bar yet: one all-NaN session keeps every array well-formed.
        panel = ClosePanel(
            panel.symbols,
            np.full((len(panel.symbols), 1), np.nan),
            np.full((len(panel.symbols), 1), np.datetime64("NaT"), dtype="datetime64[D]"),
        )
    closes = panel.closes
    signals = kernel.detect(closes, rule.fast, rule.slow, rule.kind)
    return Analysis(
        panel=panel,
        rule=rule,
        turn_rule=turns,
        signals=signals,
        drawdown=kernel.drawdown(closes),
        turns=kernel.zigzag(closes, turns.decline, turns.rebound),
        trigger=kernel.trigger_close(closes, signals),
        flat=kernel.flat_sessions_to_cross(closes, signals),
        lengths=np.count_nonzero(~np.isnan(closes), axis=1).astype(np.int64),
    )


REGIMES = {1: "golden", -1: "death", 0: None}
CROSS_TYPES = {1: "golden_cross", -1: "death_cross"}
TURN_TYPES = {kernel.PEAK: "peak", kernel.TROUGH: "trough"}


def _forward(
    analysis: Analysis, row: int, indices: npt.NDArray[np.int64]
) -> list[dict[str, float | None]]:
    if indices.size == 0:
        return []
    rows = np.full(indices.shape, row, dtype=np.int64)
    returns = kernel.forward_returns(analysis.panel.closes, rows, indices, HORIZONS)
    return [
        {str(h): pct(returns[i, j]) for j, h in enumerate(HORIZONS)} for i in range(indices.size)
    ]


def signal_of(analysis: Analysis, row: int) -> dict[str, Any] | None:
    """The ``Signal`` fields computed from closes (None when the symbol has no bars)."""
    return signals_of(analysis, np.array([row], dtype=np.int64))[0]


def signals_of(analysis: Analysis, rows: npt.NDArray[np.int64]) -> list[dict[str, Any] | None]:
    """:func:`signal_of` of each of ``rows``, computed on whole arrays: each field is one
    indexing of the kernel's arrays over all rows, and only the records are built per row.
    """
    rows = np.asarray(rows, dtype=np.int64)
    s = analysis.signals
    closes = analysis.panel.closes
    days = analysis.panel.sessions
    last = closes.shape[1] - 1
    present = analysis.lengths[rows] > 0
    # Newest cross of each row (-1: none).
    crossed = s.cross[rows] != 0
    cross_at = np.where(crossed.any(axis=1), last - np.argmax(crossed[:, ::-1], axis=1), -1)
    cross_kind = s.cross[rows, np.maximum(cross_at, 0)]
    peak_at = np.maximum(analysis.drawdown.peak_index[rows], 0)
    troughs = _last_troughs(analysis, rows)
    with np.errstate(divide="ignore", invalid="ignore"):
        gaps = (s.fast_ma[rows, last] / s.slow_ma[rows, last] - 1.0) * 100.0
    columns = zip(
        rows.tolist(),
        present.tolist(),
        days[rows, last].astype(object).tolist(),
        closes[rows, last].tolist(),
        s.fast_ma[rows, last].tolist(),
        s.slow_ma[rows, last].tolist(),
        s.regime[rows, last].tolist(),
        gaps.tolist(),
        cross_at.tolist(),
        cross_kind.tolist(),
        analysis.trigger[rows].tolist(),
        analysis.flat[rows].tolist(),
        analysis.drawdown.drawdown[rows, last].tolist(),
        days[rows, peak_at].astype(object).tolist(),
        closes[rows, peak_at].tolist(),
        analysis.lengths[rows].tolist(),
        strict=True,
    )
    rule = analysis.rule.as_dict()
    result: list[dict[str, Any] | None] = []
    for (
        row,
        has_bars,
        session,
        close,
        fast,
        slow,
        regime,
        gap,
        at,
        kind,
        trigger,
        flat,
        drawdown,
        peak_session,
        peak_close,
        length,
    ) in columns:
        if not has_bars:
            result.append(None)
            continue
        result.append(
            {
                "session": session,
                "close": close,
                "rule": dict(rule),
                "fast_value": num(fast),
                "slow_value": num(slow),
                "regime": REGIMES[regime],
                "gap_pct": num(gap),
                "last_cross": None
                if at < 0
                else {
                    "type": CROSS_TYPES[kind],
                    "session": analysis.session_of(row, at),
                    "close": float(closes[row, at]),
                },
                "sessions_since_cross": None if at < 0 else last - at,
                "trigger_close": num(trigger),
                "flat_sessions_to_cross": flat if flat >= 0 else None,
                "drawdown_pct": pct(drawdown),
                "peak": {"session": peak_session, "close": peak_close},
                "last_trough": troughs.get(row),
                "history_sessions": length,
            }
        )
    return result


def _last_troughs(analysis: Analysis, rows: npt.NDArray[np.int64]) -> dict[int, dict[str, Any]]:
    """The newest trough of each of ``rows`` as :func:`turns_of` describes it, keyed by
    row (rows without a trough are left out)."""
    t = analysis.turns
    wanted = np.zeros(analysis.panel.closes.shape[0], dtype=bool)
    wanted[rows] = True
    # Turns are sorted by (symbol, session): a row's newest trough is the last trough
    # of its run; the turn before it (any kind), if the same row's, is its previous.
    trough = np.flatnonzero((t.kind == kernel.TROUGH) & wanted[t.symbol])
    if not trough.size:
        return {}
    symbol = t.symbol[trough]
    newest = trough[np.append(symbol[1:] != symbol[:-1], True)]
    owner = t.symbol[newest]
    index = t.session[newest].astype(np.int64)
    confirm = t.confirmed[newest].astype(np.int64)
    before = newest - 1
    has_previous = (before >= 0) & (t.symbol[np.maximum(before, 0)] == owner)
    previous = np.where(has_previous, t.session[np.maximum(before, 0)], -1)
    from_extreme = kernel.forward_returns(analysis.panel.closes, owner, index, HORIZONS)
    from_confirmation = kernel.forward_returns(analysis.panel.closes, owner, confirm, HORIZONS)
    found: dict[int, dict[str, Any]] = {}
    for i, (row, at, confirmed, prior) in enumerate(
        zip(owner.tolist(), index.tolist(), confirm.tolist(), previous.tolist(), strict=True)
    ):
        found[row] = {
            "type": "trough",
            "session": analysis.session_of(row, at),
            "close": float(t.close[newest[i]]),
            "confirmed_session": analysis.session_of(row, confirmed),
            "confirmed_close": float(analysis.panel.closes[row, confirmed]),
            "change_pct": num(t.change_pct[newest[i]]),
            "sessions_from_previous_turn": None if prior < 0 else at - prior,
            "sessions_to_confirm": confirmed - at,
            "forward_returns": _returns(from_extreme[i]),
            "forward_returns_from_confirmation": _returns(from_confirmation[i]),
        }
    return found


def _returns(values: npt.NDArray[np.float64]) -> dict[str, float | None]:
    return {str(h): pct(values[j]) for j, h in enumerate(HORIZONS)}


def crosses_of(analysis: Analysis, row: int, since: date | None = None) -> list[dict[str, Any]]:
    s = analysis.signals
    indices = np.flatnonzero(s.cross[row]).astype(np.int64)
    forward = _forward(analysis, row, indices)
    result = []
    for position, index in enumerate(indices.tolist()):
        session = analysis.session_of(row, index)
        if since is not None and session < since:
            continue
        following = indices[position + 1] if position + 1 < indices.size else None
        result.append(
            {
                "type": CROSS_TYPES[int(s.cross[row, index])],
                "session": session,
                "close": float(analysis.panel.closes[row, index]),
                "fast_value": float(s.fast_ma[row, index]),
                "slow_value": float(s.slow_ma[row, index]),
                "forward_returns": forward[position],
                "reversed_after_sessions": None if following is None else int(following) - index,
            }
        )
    return result


def cross_summary(crosses: list[dict[str, Any]]) -> dict[str, Any]:
    """Count, median forward returns and share positive per type, and whipsaws."""
    summary: dict[str, Any] = {"count": len(crosses)}
    for cross_type in ("golden_cross", "death_cross"):
        chosen = [c for c in crosses if c["type"] == cross_type]
        horizons: dict[str, Any] = {}
        for h in map(str, HORIZONS):
            values = [
                c["forward_returns"][h] for c in chosen if c["forward_returns"][h] is not None
            ]
            horizons[h] = {
                "median_pct": float(np.median(values)) if values else None,
                "share_positive": sum(v > 0 for v in values) / len(values) if values else None,
                "observations": len(values),
            }
        summary[cross_type] = {"count": len(chosen), "forward_returns": horizons}
    summary["whipsaws"] = sum(
        1
        for c in crosses
        if c["reversed_after_sessions"] is not None
        and c["reversed_after_sessions"] <= WHIPSAW_SESSIONS
    )
    summary["whipsaw_sessions"] = WHIPSAW_SESSIONS
    return summary


def turns_of(analysis: Analysis, row: int) -> list[dict[str, Any]]:
    t = analysis.turns
    mask = t.symbol == row
    sessions = t.session[mask].astype(np.int64)
    confirmed = t.confirmed[mask].astype(np.int64)
    from_extreme = _forward(analysis, row, sessions)
    from_confirmation = _forward(analysis, row, confirmed)
    result = []
    previous: int | None = None
    for i, (index, confirm) in enumerate(zip(sessions.tolist(), confirmed.tolist(), strict=True)):
        result.append(
            {
                "type": TURN_TYPES[int(t.kind[mask][i])],
                "session": analysis.session_of(row, index),
                "close": float(t.close[mask][i]),
                "confirmed_session": analysis.session_of(row, confirm),
                "confirmed_close": float(analysis.panel.closes[row, confirm]),
                "change_pct": num(t.change_pct[mask][i]),
                "sessions_from_previous_turn": None if previous is None else index - previous,
                "sessions_to_confirm": confirm - index,
                "forward_returns": from_extreme[i],
                "forward_returns_from_confirmation": from_confirmation[i],
            }
        )
        previous = index
    return result

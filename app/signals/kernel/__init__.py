"""Pure numpy signal kernel: closes ``(symbols, sessions)`` in, signal arrays out.

Imports numpy only. See DESIGN §3 for the semantics; each function's docstring gives its
shape contract and NaN rules.
"""

from app.signals.kernel._arrays import TIE_TOLERANCE, MAKind
from app.signals.kernel.averages import ema, sma, window_sums
from app.signals.kernel.crosses import Signals, detect
from app.signals.kernel.daily import DailyState, Latest, advance, state_from_full
from app.signals.kernel.outlook import (
    flat_sessions_ema,
    flat_sessions_sma,
    flat_sessions_to_cross,
    trigger_close,
    trigger_close_ema,
    trigger_close_sma,
)
from app.signals.kernel.turns import (
    PEAK,
    TROUGH,
    Drawdown,
    Turns,
    ZigzagState,
    drawdown,
    forward_returns,
    zigzag,
    zigzag_step,
)

__all__ = [
    "PEAK",
    "TIE_TOLERANCE",
    "TROUGH",
    "DailyState",
    "Drawdown",
    "Latest",
    "MAKind",
    "Signals",
    "Turns",
    "ZigzagState",
    "advance",
    "detect",
    "drawdown",
    "ema",
    "flat_sessions_ema",
    "flat_sessions_sma",
    "flat_sessions_to_cross",
    "forward_returns",
    "sma",
    "state_from_full",
    "trigger_close",
    "trigger_close_ema",
    "trigger_close_sma",
    "window_sums",
    "zigzag",
    "zigzag_step",
]

"""Slow, independent reference for the kernel: plain Python loops in exact arithmetic.

Closes are taken as the exact rationals of their float64 values (``Fraction(float)``);
all of them share a power-of-two denominator, so window sums are exact integers in
units of that denominator. Shares no code with ``app.signals.kernel``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from fractions import Fraction

from tests.support import realdata

TOLERANCE = Fraction(1, 10**9)


@dataclass
class CrossReference:
    signs: list[int]  # 0 in warm-up and for ties
    regimes: list[int]
    crosses: list[tuple[int, int]]  # (session, +1 golden / -1 death)
    trigger: Fraction | None
    flat_sessions: int  # -1 none


def _scaled(closes: Sequence[float]) -> tuple[list[int], int]:
    exact = [Fraction(value) for value in closes]
    denominator = max(value.denominator for value in exact)
    return [v.numerator * (denominator // v.denominator) for v in exact], denominator


def _sign(fast_sum: int, slow_sum: int, fast: int, slow: int) -> int:
    # d = fast_sum/fast - slow_sum/slow; tie when |d| <= 1e-9 * slow_sum/slow
    scaled_d = slow * fast_sum - fast * slow_sum
    if abs(scaled_d) * TOLERANCE.denominator <= fast * slow_sum * TOLERANCE.numerator:
        return 0
    return 1 if scaled_d > 0 else -1


def sma_crosses(closes: Sequence[float], fast: int = 50, slow: int = 200) -> CrossReference:
    values, denominator = _scaled(closes)
    signs: list[int] = []
    regimes: list[int] = []
    crosses: list[tuple[int, int]] = []
    fast_sum = slow_sum = 0
    regime = 0
    for t, value in enumerate(values):
        fast_sum += value
        slow_sum += value
        if t >= fast:
            fast_sum -= values[t - fast]
        if t >= slow:
            slow_sum -= values[t - slow]
        sign = _sign(fast_sum, slow_sum, fast, slow) if t >= slow - 1 else 0
        if sign != 0:
            if regime == -sign:
                crosses.append((t, sign))
            regime = sign
        signs.append(sign)
        regimes.append(regime)
    trigger: Fraction | None = None
    flat = -1
    n = len(values)
    if n >= slow:
        kept_fast = fast_sum - values[n - fast]
        kept_slow = slow_sum - values[n - slow]
        solution = Fraction(fast * kept_slow - slow * kept_fast, (slow - fast) * denominator)
        trigger = solution if solution > 0 else None
        last = values[-1]
        for k in range(1, slow + 1):
            future_fast = sum(values[n - fast + k :]) + min(k, fast) * last
            future_slow = sum(values[n - slow + k :]) + k * last
            if regime != 0 and _sign(future_fast, future_slow, fast, slow) == -regime:
                flat = k
                break
    return CrossReference(signs, regimes, crosses, trigger, flat)


def ema_crosses(closes: Sequence[float], fast: int = 50, slow: int = 200) -> CrossReference:
    """EMA rule in 60-digit decimals (exact fractions would grow without bound)."""
    with localcontext() as context:
        context.prec = 60
        values = [Decimal(value) for value in closes]
        tolerance = Decimal(1) / Decimal(10**9)
        averages: dict[int, Decimal] = {}
        signs: list[int] = []
        regimes: list[int] = []
        crosses: list[tuple[int, int]] = []
        regime = 0
        for t in range(len(values)):
            for window in (fast, slow):
                alpha = Decimal(2) / Decimal(window + 1)
                if t == window - 1:
                    averages[window] = sum(values[:window], Decimal(0)) / window
                elif t >= window:
                    averages[window] = alpha * values[t] + (1 - alpha) * averages[window]
            sign = 0
            if t >= slow - 1:
                d = averages[fast] - averages[slow]
                if abs(d) > tolerance * averages[slow]:
                    sign = 1 if d > 0 else -1
            if sign != 0:
                if regime == -sign:
                    crosses.append((t, sign))
                regime = sign
            signs.append(sign)
            regimes.append(regime)
        return CrossReference(signs, regimes, crosses, None, -1)


@dataclass
class TurnReference:
    session: int
    confirmed: int
    kind: int  # +1 peak, -1 trough


def zigzag(
    closes: Sequence[float], decline: str = "0.20", rebound: str = "0.20"
) -> list[TurnReference]:
    """Peaks and troughs with exact thresholds ``1 - D`` and ``1 + R`` (D, R as decimals).

    Closes are taken as the decimals they were published as (``repr`` of the float,
    e.g. 10.2), not as the binary float: threshold equalities are real in market data
    (S&P 500 1938-03-31 8.50 -> 1938-04-14 10.20 is exactly +20%) and must confirm.
    """
    values = [Fraction(repr(value)) for value in closes]
    down = 1 - Fraction(decline)
    up = 1 + Fraction(rebound)
    turns: list[TurnReference] = []
    phase = 0
    high_at = low_at = 0
    extreme_at = 0
    for t, value in enumerate(values):
        if phase == 0:
            if value > values[high_at]:
                high_at = t
            if value < values[low_at]:
                low_at = t
            if value <= values[high_at] * down:
                turns.append(TurnReference(high_at, t, 1))
                phase, extreme_at = -1, t
            elif value >= values[low_at] * up:
                turns.append(TurnReference(low_at, t, -1))
                phase, extreme_at = 1, t
        elif phase == 1:
            if value > values[extreme_at]:
                extreme_at = t
            elif value <= values[extreme_at] * down:
                turns.append(TurnReference(extreme_at, t, 1))
                phase, extreme_at = -1, t
        else:
            if value < values[extreme_at]:
                extreme_at = t
            elif value >= values[extreme_at] * up:
                turns.append(TurnReference(extreme_at, t, -1))
                phase, extreme_at = 1, t
    return turns


SERIES = realdata.SERIES


def load_series(name: str) -> tuple[list[str], list[float]]:
    """Dates and closes of the real series ``<name>_daily.csv`` shipped in the repository."""
    rows = list(csv.DictReader(io.StringIO(realdata.read_text(f"{name}_daily.csv"))))
    return [row["date"] for row in rows], [float(row["close"]) for row in rows]

"""Server-drawn inline SVG: closes, the fast and slow averages, and a marker per cross.

Pure: arrays in, markup out. No JavaScript and no chart library: the page stays
readable with scripts off and costs nothing to render in the browser. Styling lives
in the page's CSS (classes ``price``, ``fast-ma``, ``slow-ma``, ``cross golden|death``).

Nothing is told by colour alone: the slow average is dashed (``DASH``, an attribute, so
it holds without the page's CSS), a golden cross is a triangle pointing up and a death
cross one pointing down. The page's legend draws the same keys (``legend_key``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date
from html import escape

import numpy as np
import numpy.typing as npt

CHART_SESSIONS = 504  # about two years of sessions
WIDTH, HEIGHT = 480.0, 230.0
LEFT, RIGHT, TOP, BOTTOM = 50.0, 6.0, 8.0, 24.0
DASH = "6 4"  # the slow average's stroke-dasharray
MARKER_HALF_WIDTH, MARKER_APEX, MARKER_BASE = 6.0, 7.0, 5.0  # still legible on a phone


@dataclass(frozen=True)
class Series:
    """One symbol's charted window; every array has the same length, oldest first.

    ``cross`` holds +1 on a golden-cross session, -1 on a death cross, else 0.
    NaN in the averages (warm-up) leaves a gap in their lines.
    """

    symbol: str
    sessions: list[date]
    closes: npt.NDArray[np.float64]
    fast: npt.NDArray[np.float64]
    slow: npt.NDArray[np.float64]
    cross: npt.NDArray[np.int8]
    fast_window: int
    slow_window: int


def slug(symbol: str) -> str:
    """An id-safe name: ``^RUT`` → ``rut``."""
    return re.sub(r"[^a-z0-9]+", "-", symbol.lower()).strip("-") or "symbol"


def _scale(low: float, high: float) -> tuple[float, float]:
    span = high - low or abs(high) or 1.0
    return low - span * 0.04, high + span * 0.04


def _path(xs: npt.NDArray[np.float64], ys: npt.NDArray[np.float64]) -> str:
    """``M x y L x y …``, starting a new segment after every NaN gap."""
    parts: list[str] = []
    pen_down = False
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        if math.isnan(y):
            pen_down = False
            continue
        parts.append(f"{'L' if pen_down else 'M'}{x:.1f} {y:.1f}")
        pen_down = True
    return " ".join(parts)


def _ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round values inside ``[low, high]`` for the horizontal grid lines."""
    raw = (high - low) / count
    if raw <= 0:
        return [low]
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(count + 2) if first + i * step <= high]


def triangle(x: float, y: float, kind: str) -> str:
    """``points`` of a cross marker centred on ``(x, y)``: golden points up, death down."""
    sign = -1.0 if kind == "golden" else 1.0
    apex = y + sign * MARKER_APEX
    base = y - sign * MARKER_BASE
    corners = ((x, apex), (x + MARKER_HALF_WIDTH, base), (x - MARKER_HALF_WIDTH, base))
    return " ".join(f"{cx:.1f},{cy:.1f}" for cx, cy in corners)


def legend_key(mark: str) -> str:
    """A small ``<svg>`` drawing ``mark`` (``price``, ``fast-ma``, ``slow-ma``, ``golden`` or
    ``death``) as the chart draws it. Hidden from screen readers: the legend's words name it."""
    head = (
        '<svg class="key" viewBox="0 0 24 14" width="24" height="14" '
        'aria-hidden="true" focusable="false" xmlns="http://www.w3.org/2000/svg">'
    )
    if mark in ("golden", "death"):
        body = f'<polygon class="cross {mark}" points="{triangle(12.0, 7.0, mark)}"/>'
    else:
        dash = f' stroke-dasharray="{DASH}"' if mark == "slow-ma" else ""
        body = f'<line class="{mark}" x1="1" y1="7" x2="23" y2="7"{dash}/>'
    return f"{head}{body}</svg>"


def render(series: Series) -> str:
    """The ``<svg>`` element for one symbol (empty string when there is nothing to draw)."""
    n = len(series.sessions)
    valid = np.concatenate([series.closes, series.fast, series.slow])
    valid = valid[~np.isnan(valid)]
    if n == 0 or valid.size == 0:
        return ""
    low, high = _scale(float(valid.min()), float(valid.max()))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    xs = LEFT + (np.arange(n, dtype=np.float64) * plot_w / max(n - 1, 1))

    def y_of(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return TOP + (high - values) * plot_h / (high - low)

    name = slug(series.symbol)
    label = escape(
        f"{series.symbol}: {n} sessions to {series.sessions[-1].isoformat()}, closes with "
        f"{series.fast_window}- and {series.slow_window}-session averages"
    )
    out = [
        f'<svg class="chart" id="chart-{name}" viewBox="0 0 {WIDTH:g} {HEIGHT:g}" '
        f'role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{label}</title>",
        '<g class="grid">',
    ]
    for tick in _ticks(low, high):
        y = float(y_of(np.array([tick]))[0])
        out.append(f'<line x1="{LEFT:g}" x2="{WIDTH - RIGHT:g}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text x="{LEFT - 4:g}" y="{y + 3:.1f}" text-anchor="end">{tick:,.0f}</text>')
    bottom = HEIGHT - 6
    out.append(f'<text x="{LEFT:g}" y="{bottom:g}">{series.sessions[0].isoformat()}</text>')
    out.append(
        f'<text x="{WIDTH - RIGHT:g}" y="{bottom:g}" text-anchor="end">'
        f"{series.sessions[-1].isoformat()}</text>"
    )
    out.append("</g>")
    for css, values, title in (
        ("price", series.closes, "close"),
        ("fast-ma", series.fast, f"{series.fast_window}-session average"),
        ("slow-ma", series.slow, f"{series.slow_window}-session average"),
    ):
        d = _path(xs, y_of(values))
        dash = f' stroke-dasharray="{DASH}"' if css == "slow-ma" else ""
        out.append(
            f'<path class="{css}" id="{css}-{name}" d="{d}"{dash}><title>{title}</title></path>'
        )
    closes_y = y_of(series.closes)
    for index in np.flatnonzero(series.cross).tolist():
        kind = "golden" if series.cross[index] > 0 else "death"
        when = series.sessions[index].isoformat()
        points = triangle(float(xs[index]), float(closes_y[index]), kind)
        out.append(
            f'<polygon class="cross {kind}" points="{points}">'
            f"<title>{kind} cross {when} at {series.closes[index]:,.2f}</title></polygon>"
        )
    out.append("</svg>")
    return "".join(out)

"""Server-drawn inline SVG: a symbol's closes, the fast and slow averages, and a marker
per cross (:func:`render`); a universe's breadth, the shares above each average and in
a golden regime (:func:`render_breadth`). Both are drawn by the same frame and lines.

Pure: arrays in, markup out. No JavaScript and no chart library: the page stays
readable with scripts off and costs nothing to render in the browser. Styling lives
in the page's CSS (classes ``price``, ``fast-ma``, ``slow-ma``, ``golden-regime``,
``cross golden|death``).

Nothing is told by colour alone: the slow average is dashed (``DASH``, an attribute, so
it holds without the page's CSS), the golden-regime share dotted (``DOTS``), a golden
cross is a triangle pointing up and a death cross one pointing down. The page's legend
draws the same keys (``legend_key``).
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
DOTS = "1.5 3"  # the golden-regime share's stroke-dasharray (breadth)
PATTERNS = {"slow-ma": DASH, "golden-regime": DOTS}  # lines that are not solid
SHARE_TICKS = [0.0, 25.0, 50.0, 75.0, 100.0]  # a breadth chart's grid, in percent
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


@dataclass(frozen=True)
class BreadthSeries:
    """One universe's charted breadth window (``/v1/breadth``'s shares, in percent);
    every array has the same length, oldest first. NaN (no denominator that session)
    leaves a gap in its line."""

    universe: str
    sessions: list[date]
    above_fast: npt.NDArray[np.float64]
    above_slow: npt.NDArray[np.float64]
    golden_regime: npt.NDArray[np.float64]
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
    """A small ``<svg>`` drawing ``mark`` (``price``, ``fast-ma``, ``slow-ma``,
    ``golden-regime``, ``golden`` or ``death``) as the chart draws it. Hidden from screen
    readers: the legend's words name it."""
    head = (
        '<svg class="key" viewBox="0 0 24 14" width="24" height="14" '
        'aria-hidden="true" focusable="false" xmlns="http://www.w3.org/2000/svg">'
    )
    if mark in ("golden", "death"):
        body = f'<polygon class="cross {mark}" points="{triangle(12.0, 7.0, mark)}"/>'
    else:
        body = f'<line class="{mark}" x1="1" y1="7" x2="23" y2="7"{_pattern(mark)}/>'
    return f"{head}{body}</svg>"


def _pattern(css: str) -> str:
    """The ``stroke-dasharray`` attribute of a line that is not solid (else nothing)."""
    pattern = PATTERNS.get(css)
    return f' stroke-dasharray="{pattern}"' if pattern else ""


@dataclass(frozen=True)
class _Frame:
    """A chart's plot area: x of each session, y of any value."""

    xs: npt.NDArray[np.float64]
    low: float
    high: float

    def y_of(self, values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        plot_h = HEIGHT - TOP - BOTTOM
        return TOP + (self.high - values) * plot_h / (self.high - self.low)


def _open(
    ident: str, label: str, sessions: list[date], frame: _Frame, ticks: list[tuple[float, str]]
) -> list[str]:
    """The ``<svg>`` opening, its title and its grid: ``ticks`` (value, text) and the
    first and last sessions."""
    out = [
        f'<svg class="chart" id="{ident}" viewBox="0 0 {WIDTH:g} {HEIGHT:g}" '
        f'role="img" aria-label="{label}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{label}</title>",
        '<g class="grid">',
    ]
    for tick, text in ticks:
        y = float(frame.y_of(np.array([tick]))[0])
        out.append(f'<line x1="{LEFT:g}" x2="{WIDTH - RIGHT:g}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text x="{LEFT - 4:g}" y="{y + 3:.1f}" text-anchor="end">{text}</text>')
    bottom = HEIGHT - 6
    out.append(f'<text x="{LEFT:g}" y="{bottom:g}">{sessions[0].isoformat()}</text>')
    out.append(
        f'<text x="{WIDTH - RIGHT:g}" y="{bottom:g}" text-anchor="end">'
        f"{sessions[-1].isoformat()}</text>"
    )
    out.append("</g>")
    return out


def _line(frame: _Frame, css: str, ident: str, values: npt.NDArray[np.float64], title: str) -> str:
    d = _path(frame.xs, frame.y_of(values))
    return f'<path class="{css}" id="{ident}" d="{d}"{_pattern(css)}><title>{title}</title></path>'


def _xs(n: int) -> npt.NDArray[np.float64]:
    plot_w = WIDTH - LEFT - RIGHT
    return LEFT + (np.arange(n, dtype=np.float64) * plot_w / max(n - 1, 1))


def render(series: Series) -> str:
    """The ``<svg>`` element for one symbol (empty string when there is nothing to draw)."""
    n = len(series.sessions)
    valid = np.concatenate([series.closes, series.fast, series.slow])
    valid = valid[~np.isnan(valid)]
    if n == 0 or valid.size == 0:
        return ""
    frame = _Frame(_xs(n), *_scale(float(valid.min()), float(valid.max())))
    name = slug(series.symbol)
    label = escape(
        f"{series.symbol}: {n} sessions to {series.sessions[-1].isoformat()}, closes with "
        f"{series.fast_window}- and {series.slow_window}-session averages"
    )
    ticks = [(tick, f"{tick:,.0f}") for tick in _ticks(frame.low, frame.high)]
    out = _open(f"chart-{name}", label, series.sessions, frame, ticks)
    for css, values, title in (
        ("price", series.closes, "close"),
        ("fast-ma", series.fast, f"{series.fast_window}-session average"),
        ("slow-ma", series.slow, f"{series.slow_window}-session average"),
    ):
        out.append(_line(frame, css, f"{css}-{name}", values, title))
    closes_y = frame.y_of(series.closes)
    for index in np.flatnonzero(series.cross).tolist():
        kind = "golden" if series.cross[index] > 0 else "death"
        when = series.sessions[index].isoformat()
        points = triangle(float(frame.xs[index]), float(closes_y[index]), kind)
        out.append(
            f'<polygon class="cross {kind}" points="{points}">'
            f"<title>{kind} cross {when} at {series.closes[index]:,.2f}</title></polygon>"
        )
    out.append("</svg>")
    return "".join(out)


def render_breadth(series: BreadthSeries) -> str:
    """The ``<svg>`` element for one universe's breadth, on a fixed 0-100 % scale (empty
    string when no session has a share)."""
    n = len(series.sessions)
    shares = np.concatenate([series.above_fast, series.above_slow, series.golden_regime])
    if n == 0 or np.isnan(shares).all():
        return ""
    frame = _Frame(_xs(n), *_scale(0.0, 100.0))
    name = slug(series.universe)
    fast, slow = series.fast_window, series.slow_window
    label = escape(
        f"{series.universe} breadth: {n} sessions to {series.sessions[-1].isoformat()}, "
        f"share of members above their {fast}- and {slow}-session averages and in a "
        "golden regime"
    )
    ticks = [(tick, f"{tick:.0f}%") for tick in SHARE_TICKS]
    out = _open(f"breadth-chart-{name}", label, series.sessions, frame, ticks)
    for css, ident, values, title in (
        ("fast-ma", "above-fast", series.above_fast, f"% above the {fast}-session average"),
        ("slow-ma", "above-slow", series.above_slow, f"% above the {slow}-session average"),
        ("golden-regime", "golden-regime", series.golden_regime, "% in a golden regime"),
    ):
        out.append(_line(frame, css, f"{ident}-{name}", values, title))
    out.append("</svg>")
    return "".join(out)

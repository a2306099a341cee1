"""The HTML status page: Jinja2 over the same facts as ``/v1/status``."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup

from app.status import chart
from app.status.components import ago
from app.status.repository import aware
from app.status.service import Gathered

REFRESH_SECONDS = 60


def _number(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def _percent(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:+.{digits}f}%"


def _when(value: datetime | None) -> str:
    return "—" if value is None else aware(value).strftime("%Y-%m-%d %H:%M UTC")


def _ago(seconds: float | None) -> str:
    return "—" if seconds is None else ago(seconds)


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}%"


def _words(value: str) -> str:
    return value.replace("_", " ")


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("app.status", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        number=_number, percent=_percent, share=_share, when=_when, ago=_ago, words=_words
    )
    return env


def _legend_key(mark: str) -> Markup:
    return Markup(chart.legend_key(mark))  # fixed markup, no outside text


def render(gathered: Gathered, *, refresh: bool = True) -> str:
    """The page; ``refresh`` False leaves out the reload directive (the reader paused it)."""
    report = gathered.report
    # Safe to mark up: the SVG is built from numbers and html-escaped text only.
    charts = {symbol: Markup(chart.render(series)) for symbol, series in gathered.charts.items()}
    breadth_charts = {
        name: Markup(chart.render_breadth(series))
        for name, series in gathered.breadth_charts.items()
    }
    return (
        environment()
        .get_template("status.html")
        .render(
            report=report,
            charts=charts,
            brief=gathered.brief,
            watch=gathered.watch,
            series=gathered.charts,
            breadth_charts=breadth_charts,
            breadth_series=gathered.breadth_charts,
            slug=chart.slug,
            key=_legend_key,
            refresh=REFRESH_SECONDS if refresh else None,
            refresh_seconds=REFRESH_SECONDS,
        )
    )

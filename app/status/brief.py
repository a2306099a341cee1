"""The status page's brief: the newest ``daily_brief`` event's Markdown as HTML."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from markdown_it import MarkdownIt
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.signals.models import Event

# CommonMark with tables; raw HTML in the text is shown as text, never passed through.
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")


@dataclass(frozen=True)
class BriefCard:
    session: date
    html: Markup


def newest(session: Session) -> BriefCard | None:
    """The newest brief that carries a ``text`` (one look-up by the briefs' symbol ``*``)."""
    event = session.scalars(
        select(Event)
        .where(Event.symbol == "*", Event.type == "daily_brief")
        .order_by(Event.session.desc())
        .limit(1)
    ).first()
    text = event.data.get("text") if event is not None else None
    if event is None or not isinstance(text, str):
        return None
    return BriefCard(event.session, Markup(render(text)))


def render(text: str) -> str:
    """``text`` as HTML, its headings two levels down (``#`` is ``<h3>``): under the
    page's ``<h1>`` and the section's ``<h2>``."""
    tokens = _MARKDOWN.parse(text)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1:]) + 2, 6)}"
    html: str = _MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {})
    return html

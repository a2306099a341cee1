"""``GET /v1/brief``: the daily brief as JSON, or Markdown with ``Accept: text/markdown``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.signals import brief, brief_markdown
from app.signals.book import SignalBook
from app.signals.schemas import IsoDate
from app.web.deps import ReadUnit, ServicesDep
from app.web.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["signals"])

MARKDOWN = "text/markdown; charset=utf-8"


@router.get(
    "/brief",
    response_model=brief.Brief,
    summary="The daily brief (JSON, or Markdown with Accept: text/markdown)",
    responses={
        **problem_responses(404),
        200: {"content": {"text/markdown": {"schema": {"type": "string"}}}},
    },
)
def get_brief(
    request: Request,
    services: ServicesDep,
    unit: ReadUnit,
    session: Annotated[
        IsoDate | None,
        Query(description="A stored session (YYYY-MM-DD); default the newest. 404 if none"),
    ] = None,
    universe: Annotated[
        str | None,
        Query(max_length=200, description="Only this universe's section (404 if unknown)"),
    ] = None,
    top: Annotated[int, Query(ge=1, le=50, description="Rows of each top list")] = brief.TOP_ROWS,
) -> brief.Brief | Response:
    """Each index's close, change, year-to-date return, regime, gap, cross watch,
    drawdown and last trough; each universe's breadth and top screen rows. As of
    ``session``: the data up to and including it."""
    book: SignalBook = request.app.state.signal_book
    with unit.begin() as db_session:
        if session is None:
            day = brief.newest_session(book, db_session)
        else:
            brief.check_session(book, db_session, session)
            day = session
        result = brief.build(book, db_session, day, services.clock(), universe=universe, top=top)
    if "text/markdown" in request.headers.get("accept", ""):
        return Response(brief_markdown.markdown(result), media_type=MARKDOWN)
    return result

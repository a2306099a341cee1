"""Public read API across symbols: compare, scan, stored events, screen, breadth.

Registered after :mod:`app.signals.router` (whose query parameters and rule check these
share), so the routes keep their order in the OpenAPI description."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.errors import InvalidInput
from app.signals import repository, screening, service
from app.signals import screen as screen_arrays
from app.signals.event_schemas import EventOut, EventPage, ScanResult
from app.signals.router import Fast, Kind, Slow, UniverseName, book_of, query_rule
from app.signals.schemas import (
    BreadthResult,
    Comparison,
    EventType,
    IsoDate,
    Regime,
    ScanEvent,
    ScreenResult,
    ScreenSort,
    StoredText,
    YtdOrDate,
)
from app.web.deps import ReadUnit, ServicesDep
from app.web.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["signals"])


@router.get(
    "/compare",
    response_model=Comparison,
    summary="Return of each symbol over a period",
    responses=problem_responses(404),
)
def compare(
    request: Request,
    services: ServicesDep,
    unit: ReadUnit,
    symbols: Annotated[str | None, Query(description="Comma-separated; default all")] = None,
    start: Annotated[YtdOrDate, Query(description="`ytd` or YYYY-MM-DD")] = "ytd",
    end: IsoDate | None = None,
    universe: UniverseName = None,
) -> Comparison:
    book = book_of(request)
    asked = _symbols(symbols)
    with unit.begin() as session:
        chosen = asked or book.snapshot(session).analysis.panel.symbols
        result = service.compare(book, session, chosen, start, end, services.clock(), universe)
    return Comparison.model_validate(result)


def _symbols(raw: str | None) -> list[str]:
    if raw is None:
        return []
    chosen = service.symbol_list(raw)
    if not chosen:
        raise InvalidInput("symbols must name at least one symbol")
    return chosen


@router.get(
    "/scan",
    response_model=ScanResult,
    summary="Symbols with an event in the last N sessions",
    responses=problem_responses(404),
)
def scan(
    request: Request,
    unit: ReadUnit,
    event: Annotated[
        Literal["golden_cross", "death_cross", "peak", "trough", "cross_approaching"], Query()
    ] = "golden_cross",
    within: Annotated[int, Query(ge=1, le=10000, description="Sessions to look back")] = 5,
    symbols: Annotated[str | None, Query(description="Comma-separated; default all")] = None,
    universe: UniverseName = None,
) -> ScanResult:
    asked = _symbols(symbols) or None
    with unit.begin() as session:
        result = service.scan(book_of(request), session, event, within, asked, universe)
    return ScanResult.model_validate(result)


@router.get("/events", response_model=EventPage, summary="Stored events, oldest first, paged")
def list_events(
    unit: ReadUnit,
    symbol: StoredText | None = None,
    type: Annotated[
        EventType | None, Query(description="One type; default all but test, snapshot")
    ] = None,
    after: Annotated[str | None, Query(description="Cursor: the `next` of a previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    live: bool | None = None,
) -> EventPage:
    with unit.begin() as session:
        rows, cursor = repository.page(
            session,
            symbol=service.normalise(symbol) if symbol else None,
            event_type=type,
            after=after,
            limit=limit,
            live=live,
        )
        events = [EventOut.model_validate(row, from_attributes=True) for row in rows]
    return EventPage(events=events, next=cursor)


Percent = Annotated[float | None, Query(ge=-1e9, le=1e9)]


@router.get(
    "/screen",
    response_model=ScreenResult,
    summary="Screen the newest session (JSON, or CSV with Accept: text/csv)",
    responses={
        **problem_responses(404),
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
    },
)
def screen(
    request: Request,
    unit: ReadUnit,
    universe: UniverseName = None,
    symbols: Annotated[str | None, Query(description="Comma-separated; default all")] = None,
    regime: Annotated[Regime | None, Query()] = None,
    max_flat_sessions_to_cross: Annotated[int | None, Query(ge=1, le=20000)] = None,
    min_gap_pct: Percent = None,
    max_gap_pct: Percent = None,
    max_trigger_distance_pct: Annotated[float | None, Query(ge=0, le=1e9)] = None,
    min_return_pct: Percent = None,
    return_sessions: Annotated[int, Query(ge=1, le=20000)] = 21,
    min_relative_volume: Annotated[float | None, Query(ge=0, le=1e9)] = None,
    min_drawdown_pct: Percent = None,
    max_drawdown_pct: Percent = None,
    event: Annotated[ScanEvent | None, Query()] = None,
    within: Annotated[int, Query(ge=1, le=10000, description="Sessions to look back")] = 5,
    sort: Annotated[ScreenSort | None, Query(description="A figure; `-name` descending")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 50,
) -> ScreenResult | Response:
    query = screening.screen_query(
        regime=regime,
        max_flat_sessions_to_cross=max_flat_sessions_to_cross,
        min_gap_pct=min_gap_pct,
        max_gap_pct=max_gap_pct,
        max_trigger_distance_pct=max_trigger_distance_pct,
        min_return_pct=min_return_pct,
        return_sessions=return_sessions,
        min_relative_volume=min_relative_volume,
        min_drawdown_pct=min_drawdown_pct,
        max_drawdown_pct=max_drawdown_pct,
        event=event,
        within=within,
        sort=sort,
        limit=limit,
    )
    asked = _symbols(symbols) or None
    with unit.begin() as session:
        result = screening.screen(book_of(request), session, query, asked, universe)
    if "text/csv" in request.headers.get("accept", ""):
        return Response(
            screen_arrays.csv_text(result["rows"]),
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="screen.csv"'},
        )
    return ScreenResult.model_validate(result)


@router.get(
    "/breadth",
    response_model=BreadthResult,
    summary="Breadth of a universe per session",
    responses=problem_responses(404),
)
def breadth(
    request: Request,
    unit: ReadUnit,
    universe: UniverseName = None,
    start: IsoDate | None = None,
    end: IsoDate | None = None,
    fast: Fast = 50,
    slow: Slow = 200,
    type: Kind = "sma",
) -> BreadthResult:
    rule = query_rule(fast, slow, type)
    with unit.begin() as session:
        result = service.breadth(book_of(request), session, rule, universe, start, end)
    return BreadthResult.model_validate(result)

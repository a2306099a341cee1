"""Public read API, per symbol: signals, symbols and their closes, crosses, turns.

The reads across symbols (compare, scan, events, screen, breadth) are in
:mod:`app.signals.screen_router`."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal
from weakref import WeakKeyDictionary

import anyio
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from app.errors import InvalidInput, NotFound
from app.market import repository as market
from app.market.csvfile import format_bars
from app.signals import service
from app.signals.analysis import DEFAULT_RULE, Rule, TurnRule
from app.signals.book import SignalBook
from app.signals.schemas import (
    BarList,
    CrossList,
    IsoDate,
    Signal,
    SignalList,
    SymbolList,
    SymbolOut,
    TurnList,
)
from app.web.deps import ReadUnit, Services
from app.web.problems import problem_responses

router = APIRouter(prefix="/v1", tags=["signals"])

Fast = Annotated[int, Query(ge=2, le=20000, description="Fast window (sessions)")]
Slow = Annotated[int, Query(ge=2, le=20000, description="Slow window (sessions)")]
Kind = Annotated[Literal["sma", "ema"], Query(description="Average type")]
SymbolPath = Annotated[str, "URL-encoded canonical symbol, e.g. %5ERUT for ^RUT"]
UniverseName = Annotated[
    str | None,
    Query(max_length=200, description="Only the members of this universe (404 if unknown)"),
]


def query_rule(fast: int, slow: int, kind: Literal["sma", "ema"]) -> Rule:
    if fast >= slow:
        raise InvalidInput(f"fast ({fast}) must be shorter than slow ({slow})")
    return Rule(fast, slow, kind)


def book_of(request: Request) -> SignalBook:
    book: SignalBook = request.app.state.signal_book
    return book


def _services(request: Request) -> Services:
    """The app's services, read directly: as a (sync) dependency it would cost a hop to
    the thread pool on every request of these hot routes."""
    services: Services = request.app.state.services
    return services


def _rendered(
    request: Request, services: Services, key: Hashable, render: Callable[[Session], bytes]
) -> bytes:
    """The body under ``key`` of the current snapshot, rendered once per data change."""
    book = book_of(request)
    with services.db.transaction(write=False) as session:
        snapshot = book.snapshot(session)
        body = snapshot.bodies.get(key)
        if body is None:
            body = render(session)
            snapshot.bodies[key] = body
    return body


@dataclass(frozen=True)
class _Render:
    ticket: int  # from ``_tickets``: orders renders and the requests waiting for one
    done: anyio.Event


_tickets = itertools.count()
#: Each book's render under way, if any (see ``_render``).
_rendering: WeakKeyDictionary[SignalBook, _Render] = WeakKeyDictionary()


async def _render(
    request: Request, services: Services, key: Hashable, render: Callable[[Session], bytes]
) -> bytes:
    """:func:`_rendered` in the book's own turn at the store, one render at a time.

    After a data change every request misses at once. One renders (reloading the book);
    the others wait here, holding no turn and no thread. A render that started after a
    request arrived has verified the data for it, so the request takes its body from
    memory; one that started before may not have seen a write the request follows, so
    the request waits for the next (one of them starts it: a check of the data versions,
    and a body from memory unless the data changed again).
    """
    book = book_of(request)
    wait = services.gate.start_wait()
    arrived = next(_tickets)
    while (under_way := _rendering.get(book)) is not None:
        await services.gate.wait_for(under_way.done, wait=wait)
        if under_way.ticket > arrived:
            body = book.cached_body(key, verify=False)
            if body is not None:
                return body
    mine = _rendering[book] = _Render(next(_tickets), anyio.Event())
    try:
        # The book's turn (``shared``): what it renders serves every request.
        return await services.gate.run(
            _rendered, request, services, key, render, wait=wait, shared=True
        )
    finally:
        del _rendering[book]
        mine.done.set()


def list_key(book: SignalBook, now: datetime) -> Hashable:
    """The cache key of the ``/v1/signals`` body at ``now``."""
    return ("signals", book.expected_session(now))


def signal_key(book: SignalBook, now: datetime, name: str, rule: Rule) -> Hashable:
    """The cache key of the ``/v1/signals/{symbol}`` body at ``now``."""
    return ("signal", name, book.expected_session(now), rule)


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")


@router.get(
    "/signals",
    response_model=SignalList,
    summary="Current signals of every symbol",
    responses=problem_responses(404),
)
async def list_signals(request: Request, universe: UniverseName = None) -> Response:
    """Served from memory: the body is rendered once per data change (and session)."""
    services = _services(request)
    book = book_of(request)
    now = services.clock()
    if universe is not None:

        def members(session: Session) -> bytes:
            signals = service.all_signals(book, session, now, universe)
            return SignalList.model_validate({"signals": signals}).model_dump_json().encode()

        return _json(await services.gate.run(_read, services, members))
    key = list_key(book, now)
    body = book.cached_body(key)
    if body is None:

        def render(session: Session) -> bytes:
            signals = service.all_signals(book, session, now)
            return SignalList.model_validate({"signals": signals}).model_dump_json().encode()

        body = await _render(request, services, key, render)
    return _json(body)


@router.get("/signals/{symbol}", response_model=Signal, summary="Current signal of one symbol")
async def get_signal(
    symbol: SymbolPath,
    request: Request,
    fast: Fast = 50,
    slow: Slow = 200,
    type: Kind = "sma",
) -> Response:
    """The default rule is served from memory like ``/v1/signals``; others on demand."""
    services = _services(request)
    book = book_of(request)
    now = services.clock()
    name = service.normalise(symbol)
    rule = query_rule(fast, slow, type)
    key = signal_key(book, now, name, rule)

    def render(session: Session) -> bytes:
        signal = service.one_signal(book, session, name, rule, now)
        return Signal.model_validate(signal).model_dump_json().encode()

    if rule != DEFAULT_RULE:
        return _json(await services.gate.run(_read, services, render))
    body = book.cached_body(key)
    if body is None:
        body = await _render(request, services, key, render)
    return _json(body)


def _read(services: Services, render: Callable[[Session], bytes]) -> bytes:
    with services.db.transaction(write=False) as session:
        return render(session)


@router.get("/symbols", response_model=SymbolList, summary="Tracked symbols")
def list_symbols(unit: ReadUnit) -> SymbolList:
    with unit.begin() as session:
        symbols = market.tracked_symbols(session)
        spans = market.spans(session, symbols)
    return SymbolList(
        symbols=[
            SymbolOut(
                symbol=s,
                first_session=spans[s][0] if s in spans else None,
                last_session=spans[s][1] if s in spans else None,
                sessions=spans[s][2] if s in spans else 0,
            )
            for s in symbols
        ]
    )


@router.get(
    "/symbols/{symbol}/closes",
    response_model=BarList,
    summary="Stored daily bars (JSON, or CSV with Accept: text/csv)",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def get_closes(
    symbol: SymbolPath,
    request: Request,
    unit: ReadUnit,
    start: IsoDate | None = None,
    end: IsoDate | None = None,
) -> BarList | StreamingResponse:
    symbol = service.normalise(symbol)
    if start and end and end < start:
        raise InvalidInput(f"end {end} is before start {start}")
    with unit.begin() as session:
        if symbol not in market.tracked_symbols(session):
            raise NotFound(f"unknown symbol {symbol!r}: it is not tracked")
        bars = market.read_bars(session, symbol, start, end)
    if "text/csv" in request.headers.get("accept", ""):
        return StreamingResponse(
            iter(list(format_bars(bars))),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{symbol}.csv"'},
        )
    return BarList.model_validate({"symbol": symbol, "bars": bars}, from_attributes=True)


@router.get(
    "/symbols/{symbol}/crosses",
    response_model=CrossList,
    summary="Every cross with forward returns, and a summary",
)
def get_crosses(
    symbol: SymbolPath,
    request: Request,
    unit: ReadUnit,
    fast: Fast = 50,
    slow: Slow = 200,
    type: Kind = "sma",
    since: IsoDate | None = None,
) -> CrossList:
    rule = query_rule(fast, slow, type)
    with unit.begin() as session:
        result = service.crosses(book_of(request), session, service.normalise(symbol), rule, since)
    return CrossList.model_validate(result)


@router.get(
    "/symbols/{symbol}/turns",
    response_model=TurnList,
    summary="Confirmed peaks and troughs (zigzag) with forward returns",
)
def get_turns(
    symbol: SymbolPath,
    request: Request,
    unit: ReadUnit,
    decline: Annotated[float, Query(gt=0, lt=100, description="Decline % confirming a peak")] = 20,
    rebound: Annotated[
        float, Query(gt=0, le=1000, description="Rebound % confirming a trough")
    ] = 20,
) -> TurnList:
    rule = TurnRule(decline / 100, rebound / 100)
    with unit.begin() as session:
        result = service.turns(book_of(request), session, service.normalise(symbol), rule)
    return TurnList.model_validate(result)

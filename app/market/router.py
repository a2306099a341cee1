"""Managing tracked symbols (needs an API key; stopping one needs an admin key)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from app.api.deps import ServicesDep, WriteSession
from app.api.problems import problem_responses
from app.auth.deps import AdminKey, RequireKey
from app.market import symbols

router = APIRouter(prefix="/v1/symbols", tags=["symbols"], responses=problem_responses(401))


class SymbolIn(BaseModel):
    symbol: str = Field(min_length=1, max_length=40, examples=["IWM"])


class Tracked(BaseModel):
    symbol: str
    created: bool = Field(description="False when it was already tracked")
    detail: str


@router.post(
    "",
    response_model=Tracked,
    status_code=201,
    summary="Track a symbol; the next poll backfills its history",
    responses={200: {"model": Tracked, "description": "Already tracked"}},
)
def add_symbol(
    body: SymbolIn,
    _identity: RequireKey,
    services: ServicesDep,
    session: WriteSession,
    response: Response,
) -> Tracked:
    name = symbols.canonical(body.symbol)
    _row, created = symbols.track(session, name, now=services.clock())
    if not created:
        response.status_code = 200
    return Tracked(
        symbol=name,
        created=created,
        detail="tracked; the next poll backfills its history" if created else "already tracked",
    )


@router.delete(
    "/{symbol}",
    status_code=204,
    summary="Stop tracking a symbol (admin; stored data is kept)",
    responses=problem_responses(403),
)
def remove_symbol(symbol: str, _identity: AdminKey, session: WriteSession) -> Response:
    symbols.untrack(session, symbols.canonical(symbol))
    return Response(status_code=204)

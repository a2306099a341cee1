"""Managing tracked symbols (needs an API key; stopping one needs an admin key) and
universes, named symbol lists (public to read; changing one needs an admin key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field

from app.auth.deps import AdminKey, RequireKey
from app.market import symbols, universes
from app.market.schemas import (
    UniverseIn,
    UniverseList,
    UniverseOut,
    UniverseReplaced,
    UniverseSummary,
)
from app.web.deps import ReadUnit, ServicesDep, WriteUnit
from app.web.problems import problem_responses

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
    unit: WriteUnit,
    response: Response,
) -> Tracked:
    name = symbols.canonical(body.symbol)
    with unit.begin() as session:
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
def remove_symbol(symbol: str, _identity: AdminKey, unit: WriteUnit) -> Response:
    with unit.begin() as session:
        symbols.untrack(session, symbols.canonical(symbol))
    return Response(status_code=204)


universes_router = APIRouter(prefix="/v1/universes", tags=["universes"])

UniverseName = Annotated[
    str,
    Path(
        max_length=64,
        description="Letters, digits and _ . - (at most 64; case is ignored)",
        examples=["russell2000"],
    ),
]


def _summary(found: universes.UniverseInfo) -> UniverseSummary:
    return UniverseSummary.model_validate(found, from_attributes=True)


@universes_router.get("", response_model=UniverseList, summary="Every universe and its size")
def list_universes(unit: ReadUnit) -> UniverseList:
    with unit.begin() as session:
        found = universes.list_all(session)
    return UniverseList(universes=[_summary(universe) for universe in found])


@universes_router.get(
    "/{name}",
    response_model=UniverseOut,
    summary="One universe and its symbols",
    responses=problem_responses(404),
)
def read_universe(name: UniverseName, unit: ReadUnit) -> UniverseOut:
    with unit.begin() as session:
        found = universes.info(session, name)
        members = universes.members(session, found.name)
    return UniverseOut(**_summary(found).model_dump(), symbols=members)


@universes_router.put(
    "/{name}",
    response_model=UniverseReplaced,
    summary="Create or replace a universe's list (admin); new symbols are tracked",
    responses={
        201: {"model": UniverseReplaced, "description": "Created"},
        **problem_responses(401, 403),
    },
)
def replace_universe(
    name: UniverseName,
    body: UniverseIn,
    _identity: AdminKey,
    services: ServicesDep,
    unit: WriteUnit,
    response: Response,
) -> UniverseReplaced:
    with unit.begin() as session:
        replaced = universes.replace(session, name, body.symbols, now=services.clock())
        found = universes.info(session, replaced.name)
    if replaced.created:
        response.status_code = 201
    return UniverseReplaced(
        **_summary(found).model_dump(),
        symbols=replaced.symbols,
        created=replaced.created,
        newly_tracked=replaced.newly_tracked,
    )


@universes_router.delete(
    "/{name}",
    status_code=204,
    summary="Delete a universe (admin); its symbols stay tracked, stored data is kept",
    responses=problem_responses(401, 403, 404),
)
def delete_universe(name: UniverseName, _identity: AdminKey, unit: WriteUnit) -> Response:
    with unit.begin() as session:
        universes.remove(session, name)
    return Response(status_code=204)

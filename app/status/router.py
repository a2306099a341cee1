"""Health endpoints (and, later, the status page)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.api.deps import ServicesDep
from app.api.problems import problem
from app.status.health import readiness_problem

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    summary="Readiness: the store is reachable and at the newest migration",
    responses={503: {"description": "Not ready; `detail` says why"}},
)
async def readyz(services: ServicesDep) -> Health | JSONResponse:
    reason = await run_in_threadpool(readiness_problem, services.db)
    if reason is not None:
        return problem(503, reason, title="Not ready")
    return Health(status="ready")

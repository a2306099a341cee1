"""Health endpoints, the status page, its JSON, and the Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from prometheus_client.exposition import choose_encoder
from pydantic import BaseModel

from app.signals.book import SignalBook
from app.status import metrics, page, service
from app.status.health import readiness_problem
from app.status.schemas import StatusReport
from app.web.deps import ServicesDep
from app.web.problems import problem

router = APIRouter(tags=["health"])
PROMETHEUS_TEXT = "text/plain; version=0.0.4"


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


async def _gather(request: Request, services: ServicesDep) -> service.Gathered:
    book: SignalBook = request.app.state.signal_book
    return await services.gate.run(
        service.gather, services.db, book, services.settings, services.clock()
    )


@router.get("/", include_in_schema=False)
async def root() -> RedirectResponse:
    return RedirectResponse("/status", status_code=307)


@router.get(
    "/status",
    response_class=HTMLResponse,
    tags=["status"],
    summary="Status page for people: components, symbols with charts, events, deliveries",
)
async def status_page(request: Request, services: ServicesDep) -> HTMLResponse:
    gathered = await _gather(request, services)
    html = page.render(gathered, refresh=request.query_params.get("refresh") != "off")
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@router.get(
    "/v1/status",
    response_model=StatusReport,
    tags=["status"],
    summary="The status page's facts as JSON",
)
async def status_json(request: Request, services: ServicesDep) -> StatusReport:
    return (await _gather(request, services)).report


@router.get(
    "/metrics",
    response_class=Response,
    tags=["status"],
    summary="Prometheus metrics (text exposition format)",
    responses={
        200: {
            "description": "Prometheus text (OpenMetrics when asked by Accept)",
            "content": {PROMETHEUS_TEXT: {"schema": {"type": "string"}}},
        }
    },
)
async def prometheus(request: Request) -> Response:
    registry = metrics.metrics_for(request.app).registry
    # Text format by default; OpenMetrics when the scraper asks for it.
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    body = await run_in_threadpool(encode, registry)
    return Response(body, headers={"Content-Type": content_type})

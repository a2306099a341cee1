"""Test doubles at the process edges only: a scripted HTTP transport and a fake sleep."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from app.market.providers.base import RetryPolicy

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "providers"
T = TypeVar("T")


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def json_response(name: str, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, content=fixture_bytes(name), headers={"content-type": "application/json"}
    )


class Script:
    """Answers requests in order with the given responses (or raises given errors)."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if not self.answers:
            raise AssertionError(f"unexpected request {request.url}")
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


class RecordingSleep:
    """Stands in for ``asyncio.sleep``: records each back-off delay, never waits."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def retry_policy(retries: int = 2) -> tuple[RetryPolicy, RecordingSleep]:
    sleep = RecordingSleep()
    return RetryPolicy(retries=retries, sleep=sleep), sleep


def run_with_client(
    handler: Callable[[httpx.Request], httpx.Response],
    body: Callable[[httpx.AsyncClient], Coroutine[Any, Any, T]],
) -> T:
    """Run ``body(client)`` on a fresh event loop with a client over ``handler``."""

    async def main() -> T:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            return await body(client)

    return asyncio.run(main())


def query(request: httpx.Request) -> dict[str, str]:
    return dict(request.url.params.multi_items())


def sessions(bars: Iterable[Any]) -> list[str]:
    return [bar.session.isoformat() for bar in bars]

"""A burst of ordinary requests, all sent at once to a real server (issue 12).

The mix: public reads (``GET /v1/symbols``, ``/v1/events``, and ``/v1/signals/%5ERUT``,
which is served from memory once rendered), key-checked reads (``GET /v1/webhooks``)
and writes (``POST /v1/symbols``, ``POST /v1/webhooks/{id}/test``), dealt round-robin.
Every answer must be a 2xx, or a 503 problem+json with ``Retry-After`` (shed); anything
else, or no answer, is an error. Used by ``tests/api/test_burst.py`` and
``benchmarks/burst.py``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Kind:
    """One kind of request in the mix."""

    name: str
    method: str
    path: str  # ``{subscription}`` stands for the subscription's id, ``{n}`` for the index
    keyed: bool = False
    body: dict[str, Any] | None = None


MIX = (
    Kind("GET /v1/symbols", "GET", "/v1/symbols"),
    Kind("GET /v1/events", "GET", "/v1/events?limit=20"),
    Kind("GET /v1/signals/^RUT", "GET", "/v1/signals/%5ERUT"),
    Kind("GET /v1/webhooks", "GET", "/v1/webhooks", keyed=True),
    Kind("POST /v1/symbols", "POST", "/v1/symbols", keyed=True, body={"symbol": "B{n}"}),
    Kind("POST /v1/webhooks/{id}/test", "POST", "/v1/webhooks/{subscription}/test", keyed=True),
)
PUBLIC_READ = MIX[0]


@dataclass(frozen=True)
class Answer:
    kind: str
    status: int  # 0: no answer (connection error or the client's timeout)
    seconds: float
    content_type: str = ""
    retry_after: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def shed(self) -> bool:
        """A 503 problem+json with ``Retry-After``: the service said "later", promptly."""
        return (
            self.status == 503
            and self.content_type.startswith(PROBLEM_JSON)
            and self.retry_after is not None
            and self.retry_after.isdigit()
        )

    @property
    def error(self) -> bool:
        return not (self.ok or self.shed)


@dataclass(frozen=True)
class Summary:
    n: int
    ok: int
    shed: int
    errors: int
    p50_ms: int
    p99_ms: int
    max_ms: int

    def line(self) -> str:
        return (
            f"burst: n={self.n} ok={self.ok} shed={self.shed} errors={self.errors} "
            f"p99_ms={self.p99_ms}"
        )


def summarise(answers: Sequence[Answer]) -> Summary:
    times = sorted(answer.seconds for answer in answers)

    def quantile(q: float) -> int:
        return round(times[min(len(times) - 1, math.ceil(q * len(times)) - 1)] * 1000)

    return Summary(
        n=len(answers),
        ok=sum(answer.ok for answer in answers),
        shed=sum(answer.shed for answer in answers),
        errors=sum(answer.error for answer in answers),
        p50_ms=quantile(0.5),
        p99_ms=quantile(0.99),
        max_ms=round(times[-1] * 1000),
    )


async def burst(
    base_url: str,
    n: int,
    *,
    key: str,
    subscription: int,
    kinds: Sequence[Kind] = MIX,
    timeout: float = 30.0,
) -> list[Answer]:
    """Send ``n`` requests of ``kinds`` (round-robin) at once, each on its own connection."""
    headers = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as client:
        start = asyncio.Event()

        async def one(index: int) -> Answer:
            kind = kinds[index % len(kinds)]
            path = kind.path.format(subscription=subscription)
            body = None
            if kind.body is not None:
                body = {k: str(v).format(n=index) for k, v in kind.body.items()}
            await start.wait()
            began = time.perf_counter()
            try:
                async with client.request(
                    kind.method,
                    base_url + path,
                    headers=headers if kind.keyed else None,
                    json=body,
                ) as response:
                    text = await response.text()
                    return Answer(
                        kind.name,
                        response.status,
                        time.perf_counter() - began,
                        response.headers.get("Content-Type", ""),
                        response.headers.get("Retry-After"),
                        text[:200] if response.status >= 300 else "",
                    )
            except (aiohttp.ClientError, TimeoutError) as exc:
                return Answer(kind.name, 0, time.perf_counter() - began, detail=repr(exc))

        tasks = [asyncio.create_task(one(index)) for index in range(n)]
        await asyncio.sleep(0)  # every task is waiting at the start line
        start.set()
        return await asyncio.gather(*tasks)


def by_kind(answers: Sequence[Answer]) -> dict[str, Summary]:
    kinds: dict[str, list[Answer]] = {}
    for answer in answers:
        kinds.setdefault(answer.kind, []).append(answer)
    return {name: summarise(group) for name, group in kinds.items()}

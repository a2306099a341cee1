"""One attempt: the signed POST of one claimed row, and the outcome it comes to."""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta

import aiohttp
from yarl import URL

from app.clock import Clock
from app.retry_after import retry_after_seconds
from app.settings import Settings
from app.webhooks.delivery_queue import Job, Outcome
from app.webhooks.formats import chat_body
from app.webhooks.models import FAILED, PENDING, SUCCEEDED
from app.webhooks.schedule import Random, retry_delay
from app.webhooks.schemas import WebhookFormat
from app.webhooks.signing import webhook_headers
from app.webhooks.ssrf import BlockedAddress, GuardedResolver, Resolver, literal_refusal

log = logging.getLogger(__name__)
EXCERPT_BYTES = 2048
USER_AGENT = "Crosswatch-Webhooks/0.1"


def message_body(event_type: str, attempted_at: datetime, event_json: bytes) -> bytes:
    """``{"type", "timestamp", "data": Event}``: the exact bytes that are signed and sent
    to a ``standard`` subscription (chat formats: :func:`formats.chat_body`)."""
    head = json.dumps(event_type), json.dumps(attempted_at.isoformat())
    return b'{"type":%s,"timestamp":%s,"data":%s}' % (
        head[0].encode(),
        head[1].encode(),
        event_json,
    )


class Sender:
    """Sends claimed rows over one HTTP client (built on first use, or the one given)."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        *,
        http: aiohttp.ClientSession | None,
        connections: int,
        timeout_seconds: float,
        resolver: Resolver,
        random: Random,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.connections = connections
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.resolver = resolver
        self.random = random
        self._http = http
        self._owns_http = http is None

    async def close(self) -> None:
        if self._http is not None and self._owns_http:
            await self._http.close()
            self._http = None

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            connector = aiohttp.TCPConnector(
                limit=self.connections,
                limit_per_host=0,
                resolver=GuardedResolver(self.resolver, self.settings.webhook_allow_private),
            )
            # No cookie jar: a receiver's cookies must never reach another receiver
            # (and filtering a jar on every request is wasted work).
            self._http = aiohttp.ClientSession(
                connector=connector,
                timeout=self.timeout,
                headers={"user-agent": USER_AGENT},
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._http

    async def attempt(self, job: Job) -> Outcome:
        """Send ``job`` once; every failure, even a bug here, is an outcome to record."""
        attempted_at = self.clock()
        started = time.perf_counter()
        try:
            code, excerpt, error, retry_after = await self._send(job, attempted_at)
        except Exception as exc:  # a bug here must not leave the row leased forever
            log.exception("delivery %d failed unexpectedly", job.delivery_id)
            code, excerpt, error, retry_after = None, str(exc)[:500], type(exc).__name__, None
        latency_ms = (time.perf_counter() - started) * 1000
        return self._decide(job, attempted_at, code, excerpt, error, retry_after, latency_ms)

    async def _send(
        self, job: Job, attempted_at: datetime
    ) -> tuple[int | None, str | None, str | None, float | None]:
        try:
            url = URL(job.url)
            refused = literal_refusal(url, self.settings.webhook_allow_private)
        except (ValueError, UnicodeError) as exc:
            refused = f"url is not valid: {exc}"
        if refused is not None:
            return None, refused, "UnsafeUrl", None
        if job.format == WebhookFormat.standard:
            body = message_body(job.event_type, attempted_at, job.event_json)
        else:
            body = chat_body(job.format, job.event_json)
        headers = webhook_headers(list(job.keys), job.msg_id, int(attempted_at.timestamp()), body)
        try:
            async with self._client().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                raw = await _read_excerpt(response)
                retry_after = retry_after_seconds(response.headers.get("Retry-After"), attempted_at)
                excerpt = raw.decode("utf-8", "ignore").replace("\x00", "")
                return response.status, excerpt, None, retry_after
        except aiohttp.ClientConnectorDNSError as exc:
            if isinstance(exc.os_error, BlockedAddress):
                return None, exc.os_error.detail, "UnsafeUrl", None
            return None, str(exc)[:EXCERPT_BYTES], type(exc).__name__, None
        except TimeoutError:
            return None, "no answer within the timeout", "Timeout", None
        except aiohttp.ClientError as exc:
            return None, str(exc).replace("\x00", "")[:EXCERPT_BYTES], type(exc).__name__, None

    def _decide(
        self,
        job: Job,
        attempted_at: datetime,
        code: int | None,
        excerpt: str | None,
        error: str | None,
        retry_after: float | None,
        latency_ms: float,
    ) -> Outcome:
        status, next_at, gone = PENDING, None, code == 410
        if code is not None and 200 <= code < 300:
            status = SUCCEEDED
        elif gone:
            status = FAILED
        else:
            delay = retry_delay(job.attempt_count + 1, random=self.random, retry_after=retry_after)
            if delay is None:
                status = FAILED
            else:
                next_at = attempted_at + timedelta(seconds=delay)
        return Outcome(
            job=job,
            attempted_at=attempted_at,
            status_code=code,
            latency_ms=latency_ms,
            error_class=error,
            excerpt=excerpt,
            status=status,
            next_attempt_at=next_at,
            gone=gone,
        )


async def _read_excerpt(response: aiohttp.ClientResponse) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < EXCERPT_BYTES:
        chunk = await response.content.read(EXCERPT_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)

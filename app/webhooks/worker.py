"""The delivery worker: claims due outbox rows, signs and POSTs them, records outcomes.

Only this module sends HTTP to subscribers. One shared ``aiohttp.ClientSession``
(15 s timeout, no redirects) whose resolver refuses private addresses when a connection
is opened, so the address checked is the address connected to. At most
``concurrency`` sends run at once and a subscription never holds more than
``per_endpoint`` rows (enforced when claiming), so one slow receiver never delays the
others. Outcomes are written in batches by one flusher, off the sending path.

Wake-ups: ``notify()`` (in-process, also called after any commit that enqueued), a
``poll_interval`` poll, and on PostgreSQL ``LISTEN crosswatch_outbox``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random as random_module
import socket
import threading
import time
from collections import deque
from datetime import datetime, timedelta

import aiohttp
import psycopg
from sqlalchemy.engine import make_url
from yarl import URL

from app.clock import Clock, system_clock
from app.db.engine import Database
from app.retry_after import retry_after_seconds
from app.settings import Settings
from app.webhooks import outbox, repository
from app.webhooks.formats import chat_body
from app.webhooks.models import FAILED, PENDING, SUCCEEDED
from app.webhooks.outbox import Job, Outcome
from app.webhooks.schedule import Random, retry_delay
from app.webhooks.schemas import WebhookFormat
from app.webhooks.signing import webhook_headers
from app.webhooks.ssrf import (
    BlockedAddress,
    GuardedResolver,
    Resolver,
    literal_refusal,
    system_resolver,
)

log = logging.getLogger(__name__)
EXCERPT_BYTES = 2048
USER_AGENT = "Crosswatch-Webhooks/0.1"
#: Pause after a failed write of outcomes before trying again (the store is down).
RECORD_RETRY_SECONDS = 0.5
#: Outcomes are written at least this often, and as soon as FLUSH_ROWS are waiting.
FLUSH_SECONDS = 0.2
FLUSH_ROWS = 500
#: A claimed row starts only while its lease outlasts a whole send by this much.
LEASE_MARGIN_SECONDS = 5.0


def message_body(event_type: str, attempted_at: datetime, event_json: bytes) -> bytes:
    """``{"type", "timestamp", "data": Event}``: the exact bytes that are signed and sent
    to a ``standard`` subscription (chat formats: :func:`formats.chat_body`)."""
    head = json.dumps(event_type), json.dumps(attempted_at.isoformat())
    return b'{"type":%s,"timestamp":%s,"data":%s}' % (
        head[0].encode(),
        head[1].encode(),
        event_json,
    )


class DeliveryWorker:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        clock: Clock = system_clock,
        http: aiohttp.ClientSession | None = None,
        worker_id: str | None = None,
        concurrency: int | None = None,
        per_endpoint: int | None = None,
        lease_seconds: float | None = None,
        timeout_seconds: float = 15,
        poll_interval: float = 0.5,
        batch_size: int = 1000,
        wake: asyncio.Event | None = None,
        resolver: Resolver = system_resolver,
        random: Random = random_module.random,
    ) -> None:
        # Unset tuning comes from the settings (DELIVERY_CONCURRENCY, …); tests set it.
        if concurrency is None:
            concurrency = settings.delivery_concurrency
        if per_endpoint is None:
            per_endpoint = settings.delivery_per_endpoint
        if lease_seconds is None:
            lease_seconds = settings.delivery_lease_seconds
        if lease_seconds <= 0:
            raise ValueError("the lease must be positive")
        self.db = db
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.concurrency = concurrency
        self.per_endpoint = per_endpoint
        self.lease = timedelta(seconds=lease_seconds)
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.resolver = resolver
        self.random = random
        self._http = http
        self._owns_http = http is None
        self._wake = wake or asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Claimed rows wait in ``_ready`` (with the monotonic time after which they may
        # no longer start: their lease must outlast a send) and start as sends finish.
        # At most ``concurrency`` sends run, and ``_held`` counts each subscription's
        # rows (waiting or sending) so a claim never gives one endpoint more than
        # ``per_endpoint`` of them. Rows that waited too long go back (``_expired``).
        self._ready: deque[tuple[Job, float]] = deque()
        self._expired: list[int] = []
        # (A lease too short for that, e.g. in tests: at least half of it must be left.)
        self._start_by = max(
            lease_seconds - timeout_seconds - LEASE_MARGIN_SECONDS, lease_seconds / 2
        )
        self._running: dict[asyncio.Task[Outcome], Job] = {}
        self._held: dict[int, int] = {}
        self._room = asyncio.Event()
        self._idle = asyncio.Event()
        self._results: list[Outcome] = []
        self._flush_due = asyncio.Event()
        # The worker's own store writes (claims, outcomes, releases) run in threads and
        # take turns here: on SQLite they would otherwise meet in its busy handler, which
        # sleeps up to 100 ms a turn and stalled claims behind outcome writes.
        self._store_turn = threading.Lock()

    async def __aenter__(self) -> DeliveryWorker:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def notify(self) -> None:
        """Wake the loop now (thread-safe): new rows were committed."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._wake.set)

    async def close(self) -> None:
        if self._http is not None and self._owns_http:
            await self._http.close()
            self._http = None

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None:
            connector = aiohttp.TCPConnector(
                limit=self.concurrency,
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

    async def run_once(self) -> int:
        """Claim one batch of due rows, deliver them all, record them; returns the count."""
        self._loop = asyncio.get_running_loop()
        jobs, _more = await asyncio.to_thread(self._claim, self.batch_size, {})
        if not jobs:
            return 0
        self._dispatch(jobs)
        await self._idle.wait()
        results = self._take_results()
        await asyncio.to_thread(self._record, results)
        return len(results)

    async def run_forever(self, stop: asyncio.Event, *, grace_seconds: float = 5.0) -> None:
        """Deliver until ``stop`` is set; then wait up to ``grace_seconds`` for sends."""
        self._loop = asyncio.get_running_loop()
        unregister = repository.register_waker(self.notify)
        listener = None
        if self.db.engine.dialect.name == "postgresql":
            listener = asyncio.create_task(self._listen())
        flusher = asyncio.create_task(self._flush_forever())
        try:
            await self._loop_until(stop)
        finally:
            unregister()
            # Rows not yet started go back to the queue at once; sends get the grace.
            unsent = [job.delivery_id for job, _ in self._ready] + self._expired
            self._ready.clear()
            if self._running:
                await asyncio.wait(list(self._running), timeout=grace_seconds)
            unsent += [job.delivery_id for task, job in self._running.items() if not task.done()]
            for task in list(self._running):
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)
            flusher.cancel()
            if listener is not None:
                listener.cancel()
            await asyncio.gather(flusher, *(t for t in [listener] if t), return_exceptions=True)
            await asyncio.to_thread(self._record, self._take_results())
            if unsent:
                await asyncio.to_thread(self._release, unsent)
            await self.close()

    async def _loop_until(self, stop: asyncio.Event) -> None:
        # Besides the sends, up to ``batch_size`` rows are claimed ahead, so a claim's
        # round trip never leaves the sends idle. A claim is made when the rows
        # waiting fall to half of that (``_room``), on a wake-up (new rows committed)
        # or every ``poll_interval`` (retries falling due).
        capacity = self.concurrency + self.batch_size
        more = False
        while not stop.is_set():
            self._wake.clear()
            self._room.clear()
            if self._expired:
                expired, self._expired = self._expired, []
                try:
                    await asyncio.to_thread(self._release, expired)
                except Exception:
                    log.exception("releasing %d rows failed; their leases will end", len(expired))
            room = capacity - len(self._ready) - len(self._running)
            if room >= max(1, self.batch_size // 2) or not self._running:
                try:
                    jobs, more = await asyncio.to_thread(self._claim, room, dict(self._held))
                except Exception:
                    log.exception("claiming deliveries failed; retrying")
                    jobs, more = [], False
                self._dispatch(jobs)
            else:
                more = True  # claim again once sends have made room
            waiters = [self._wake.wait(), stop.wait()]
            if more:
                waiters.append(self._room.wait())
            tasks = [asyncio.ensure_future(waiter) for waiter in waiters]
            await asyncio.wait(
                tasks, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED
            )
            for task in tasks:
                task.cancel()

    def _dispatch(self, jobs: list[Job]) -> None:
        start_by = time.monotonic() + self._start_by
        for job in jobs:
            self._held[job.subscription_id] = self._held.get(job.subscription_id, 0) + 1
            self._ready.append((job, start_by))
        self._start_ready()

    def _start_ready(self) -> None:
        now = time.monotonic()
        while self._ready and len(self._running) < self.concurrency:
            job, start_by = self._ready.popleft()
            if now > start_by:
                self._let_go(job)
                self._expired.append(job.delivery_id)
                self._wake.set()
                continue
            task = asyncio.create_task(self._attempt(job))
            self._running[task] = job
            task.add_done_callback(self._finished)
        if not self._ready and not self._running:
            self._idle.set()
        else:
            self._idle.clear()

    def _let_go(self, job: Job) -> None:
        held = self._held.pop(job.subscription_id, 1) - 1
        if held:
            self._held[job.subscription_id] = held

    def _finished(self, task: asyncio.Task[Outcome]) -> None:
        job = self._running.pop(task)
        self._let_go(job)
        if not task.cancelled():
            if task.exception() is None:
                self._results.append(task.result())
            else:
                log.error("delivery task failed", exc_info=task.exception())
        self._start_ready()
        if len(self._results) >= FLUSH_ROWS or not self._running:
            self._flush_due.set()  # enough to write, or nothing left in flight
        if len(self._ready) <= self.batch_size // 2:
            self._room.set()

    def _take_results(self) -> list[Outcome]:
        results, self._results = self._results, []
        return results

    async def _flush_forever(self) -> None:
        # Outcomes are written every FLUSH_SECONDS, or sooner once FLUSH_ROWS are
        # waiting: few, large transactions (each has a fixed cost) off the send path.
        while True:
            # (asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the
            # cancellation that stops the flusher if the event is set meanwhile.)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FLUSH_SECONDS):
                    await self._flush_due.wait()
            self._flush_due.clear()
            batch = self._take_results()
            if batch:
                try:
                    await asyncio.to_thread(self._record, batch)
                except Exception:
                    # The attempts happened: keep their outcomes and record them when the
                    # store answers again (a dropped connection, a restart). Dropping them
                    # would send every acknowledged delivery again once its lease ends.
                    # Past the lease the row is due again anyway, so give up on those.
                    now = self.clock()
                    kept = [o for o in batch if now - o.attempted_at < self.lease]
                    log.exception(
                        "recording %d outcomes failed; %d kept to retry", len(batch), len(kept)
                    )
                    self._results[:0] = kept
                    await asyncio.sleep(RECORD_RETRY_SECONDS)

    async def _listen(self) -> None:
        url = make_url(self.db.url).set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {repository.NOTIFY_CHANNEL}")
                    async for _note in connection.notifies():
                        self._wake.set()
            except (psycopg.Error, OSError) as exc:
                log.warning("LISTEN connection lost (%s); polling meanwhile", exc)
                await asyncio.sleep(1)

    def _claim(self, limit: int, held: dict[int, int]) -> tuple[list[Job], bool]:
        with self._store_turn, self.db.transaction() as session:
            return outbox.claim(
                session,
                worker_id=self.worker_id,
                now=self.clock(),
                lease=self.lease,
                limit=limit,
                per_subscription=self.per_endpoint,
                held=held,
            )

    def _record(self, outcomes: list[Outcome]) -> None:
        if outcomes:
            with self._store_turn, self.db.transaction() as session:
                outbox.record(session, outcomes, worker_id=self.worker_id)

    def _release(self, delivery_ids: list[int]) -> None:
        with self._store_turn, self.db.transaction() as session:
            outbox.release(session, delivery_ids, self.worker_id)

    async def _attempt(self, job: Job) -> Outcome:
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

"""Jobs: create (persisted before the 202), run (claim, replay the route, heartbeat, finish),
cancel, recover (expired leases, lost messages) and expire old results."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.types import ASGIApp

from frontend.core.config import Settings
from frontend.core.errors import Conflict, InvalidRequest, NotFound
from frontend.crawl.policy import CrawlPolicy, Resolver
from frontend.jobs import webhooks
from frontend.jobs.delivery import WebhookSender
from frontend.jobs.dispatch import dispatch
from frontend.jobs.items import RESULT_TOO_LARGE, STREAM_ENDPOINTS, ItemSink
from frontend.jobs.queue import Workers, make_huey
from frontend.jobs.store import FINISHED, Job, JobStore, SqliteJobStore, now

logger = logging.getLogger(__name__)
# The endpoints a job may run (a route added here runs as a job with no other change).
JOB_ENDPOINTS = (
    "/api/embed", "/api/caption", "/api/ocr", "/api/crawl", "/api/rerank", *STREAM_ENDPOINTS
)  # fmt: skip
_NOT_STORED = "the result could not be stored (the log has the details)"
_STOP_WAIT_SECONDS = 10
_FINISHED_PASS_SECONDS = 30  # expiry and webhook resumption look at every finished job


class JobService:
    """app.state.jobs: one per app (the service and each `homelab-ai worker`)."""

    def __init__(
        self,
        settings: Settings,
        app: ASGIApp,
        resolver: Resolver,
        secret_for: Any,
        registry: CollectorRegistry,
    ) -> None:
        self.config = settings.jobs
        self.app = app
        self.resolver = resolver
        self.secret_for = secret_for  # owner -> the key's own webhook secret or None
        self.policy = CrawlPolicy(
            settings.crawl.allow_private_networks, settings.crawl.allowed_hosts
        )
        self.store = open_store(self.config.broker, settings.data_dir)
        self.huey = make_huey(self.config.broker, settings.data_dir)
        self.workers = Workers(self.huey, self._run, self.config.workers, self.config.poll_seconds)
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping = threading.Event()
        self._abandon: set[concurrent.futures.Future[Any]] = set()
        self.webhooks = WebhookSender(self)
        self._finished_pass = 0.0
        self.finished = Counter(
            "jobs", "Jobs finished by this process, by endpoint and status",
            ["endpoint", "status"], registry=registry,
        )  # fmt: skip
        depth = Gauge("job_queue_depth", "Jobs queued and not yet running", registry=registry)
        depth.set_function(lambda: self.store.counts().get("queued", 0))

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sweep()  # what a killed process left: expired leases, queued jobs with no message
        self.workers.start()

    def stop(self) -> None:
        """Stop the workers; a job still running after the wait goes back to the queue."""
        self.stopping.set()
        if not self.workers.stop(_STOP_WAIT_SECONDS):
            for future in list(self._abandon):
                future.cancel()
            self.workers.stop(_STOP_WAIT_SECONDS)
        self.webhooks.shutdown()  # deliveries stop before their next attempt
        self.store.close()

    def sweep(self) -> None:
        """Recovery and expiry; run at start and every lease/2 seconds by every process."""
        moment = now()
        for job_id in self.store.ids("running"):
            job = self.store.get(job_id)
            expired = job is not None and job.lease_until < moment
            if expired and self.store.transition(job_id, "running", "queued"):
                logger.warning("job %s: its worker lost its lease; re-queued", job_id)
                self._enqueue(job_id)
        queued = self.store.ids("queued")
        if queued:
            pending = self.workers.pending_ids()
            for job_id in queued:
                job = self.store.get(job_id)
                enqueued = float(job.meta.get("enqueued_at", 0)) if job else moment
                if job_id not in pending and moment - enqueued > self.config.lease_seconds:
                    logger.warning("job %s: queued without a message; enqueued again", job_id)
                    self._enqueue(job_id)
        if moment - self._finished_pass >= _FINISHED_PASS_SECONDS:
            self._finished_pass = moment
            self._sweep_finished(moment)

    def _sweep_finished(self, moment: float) -> None:
        """Delete expired jobs; resume webhook deliveries a dead process left unfinished."""
        horizon = moment - self.config.result_ttl_seconds
        for status in FINISHED:
            for job_id in self.store.ids(status):
                job = self.store.get(job_id)
                if job is None:
                    continue
                if float(job.meta.get("finished_at") or moment) < horizon:
                    self.store.delete(job_id)
                    continue
                hook: dict[str, Any] = job.meta.get("webhook") or {}
                pending = hook and hook.get("delivered") is None and status != "cancelled"
                if pending and float(hook.get("lease_until") or 0) < moment:
                    logger.warning("job %s: resuming its webhook delivery", job_id)
                    self.webhooks.later(job_id, job.owner, hook)

    def _enqueue(self, job_id: str) -> None:
        self.store.patch(job_id, {"enqueued_at": now()})
        self.workers.enqueue(job_id)

    # ---- the API side ----------------------------------------------------------------------

    async def create(
        self,
        owner: str,
        key_name: str | None,
        endpoint: str,
        content_type: str,
        query: str,
        body: bytes,
        webhook: str | None,
        extra: dict[str, Any] | None = None,
    ) -> Job:
        """`extra`: meta kept with the job for the API that shows it (Firecrawl's formats)."""
        if endpoint not in JOB_ENDPOINTS:
            raise InvalidRequest(
                f"endpoint: '{endpoint[:100]}' cannot run as a job",
                {"field": "endpoint", "allowed": list(JOB_ENDPOINTS)},
            )
        hook: dict[str, Any] | None = None
        if webhook is not None:
            if self.secret_for(owner) is None and self.config.webhook_secret is None:
                raise InvalidRequest(
                    "webhook: no signing secret is configured (jobs.webhook_secret or the "
                    "API key's webhook_secret)",
                    {"field": "webhook"},
                )
            await webhooks.check_target(self.policy, self.resolver, webhook)
            hook = {"url": webhook, "attempts": [], "delivered": None}
        moment = now()
        job = Job(
            id=uuid.uuid4().hex,
            owner=owner,
            endpoint=endpoint,
            status="queued",
            created_at=moment,
            meta={
                **(extra or {}),
                "content_type": content_type,
                "query": query,
                "key_name": key_name,
                "webhook": hook,
                "progress": {"done": 0, "total": 1},
                "runs": 0,
                "enqueued_at": moment,
            },
        )
        await asyncio.to_thread(self._persist, job, body)
        return job

    def _persist(self, job: Job, body: bytes) -> None:
        self.store.create(job, body)  # before the message: a lost message is found by sweep()
        self.workers.enqueue(job.id)

    async def owned(self, owner: str, job_id: str) -> Job:
        job = await asyncio.to_thread(self.store.get, job_id) if len(job_id) <= 64 else None
        if job is None or job.owner != owner:  # another key's job does not exist for this one
            raise NotFound(f"no job '{job_id[:64]}'")
        return job

    async def cancel(self, owner: str, job_id: str) -> Job:
        job = await self.owned(owner, job_id)
        for status in ("queued", "running"):
            done = await asyncio.to_thread(self.store.transition, job_id, status, "cancelled")
            if done:
                await asyncio.to_thread(self.store.patch, job_id, {"finished_at": now()})
                self.finished.labels(job.endpoint, "cancelled").inc()
                return await self.owned(owner, job_id)
        raise Conflict(f"job '{job_id}' has already finished ({job.status})")

    # ---- the worker side (huey worker threads) ---------------------------------------------

    def _run(self, job_id: str) -> None:
        job = self.store.get(job_id)
        if job is None or job.status != "queued" or self.loop is None:
            return  # cancelled, finished, or a duplicate message of a job another worker has
        lease = self.config.lease_seconds
        if not self.store.transition(
            job_id, "queued", "running", lease_until=now() + lease, new_worker=self.worker_id
        ):
            return
        started = now()
        runs = int(job.meta.get("runs", 0)) + 1
        self.store.patch(job_id, {"started_at": started, "runs": runs, "finished_at": None})
        body = self.store.body(job_id) or b""
        sink: ItemSink | None = None
        if job.endpoint in STREAM_ENDPOINTS:
            # A re-run (its worker died) starts the crawl again from scratch.
            self.store.clear_items(job_id)
            sink = ItemSink(self.store, job_id, self.worker_id, self.config.max_result_bytes)
        future = asyncio.run_coroutine_threadsafe(
            dispatch(self.app, job, body, sink, sink.stop if sink else None), self.loop
        )
        self._abandon.add(future)
        try:
            outcome = self._wait(job_id, future, lease)
        finally:
            self._abandon.discard(future)
        if outcome is None:
            return
        if sink is not None:
            self._finish(job, started, *sink.outcome(*outcome), progress=sink.progress)
        else:
            self._finish(job, started, *outcome)

    def _wait(
        self, job_id: str, future: concurrent.futures.Future[tuple[int, bytes]], lease: float
    ) -> tuple[int, bytes] | None:
        """The route's answer; None when the job was cancelled or given back meanwhile."""
        while True:
            try:
                return future.result(timeout=max(lease / 3, 0.1))
            except concurrent.futures.CancelledError:
                if self.stopping.is_set():  # shutting down: the next start re-runs it
                    self.store.transition(job_id, "running", "queued", worker=self.worker_id)
                    self._enqueue(job_id)
                return None
            except concurrent.futures.TimeoutError:
                if not self.store.transition(
                    job_id, "running", "running", worker=self.worker_id, lease_until=now() + lease
                ):
                    future.cancel()  # cancelled by its owner, or its lease was taken over
                    return None
            except Exception:
                logger.exception("job %s failed inside the service", job_id)
                error = _error("INTERNAL_ERROR", "internal server error", job_id)
                return 500, orjson.dumps({"error": error})

    def _store_result(self, job_id: str, content: bytes) -> bool:
        # A result the store refuses (Redis out of memory) must fail the job, not leave it
        # running to be re-run for ever once its lease expires.
        try:
            self.store.set_result(job_id, content)
        except Exception:
            logger.exception("job %s: its result could not be stored", job_id)
            return False
        return True

    def _finish(
        self,
        job: Job,
        started: float,
        status: int,
        content: bytes,
        progress: dict[str, int] | None = None,
    ) -> None:
        finished = now()
        meta: dict[str, Any] = {
            "http_status": status,
            "finished_at": finished,
            "progress": progress or {"done": 1, "total": 1},
        }
        if 200 <= status < 300 and len(content) <= self.config.max_result_bytes:
            stored = self._store_result(job.id, content)
            outcome = "succeeded" if stored else "failed"
            meta["error"] = None if stored else _error("INTERNAL_ERROR", _NOT_STORED, job.id)
        elif 200 <= status < 300:
            meta["error"] = _error(
                RESULT_TOO_LARGE,
                f"the result ({len(content)} bytes) is larger than "
                f"jobs.max_result_bytes ({self.config.max_result_bytes})",
                job.id,
            )
            outcome = "failed"
        else:
            try:
                meta["error"] = orjson.loads(content)["error"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                meta["error"] = _error("INTERNAL_ERROR", "internal server error", job.id)
            outcome = "failed"
        self.store.patch(job.id, meta)
        if not self.store.transition(job.id, "running", outcome, worker=self.worker_id):
            self.store.set_result(job.id, b"")  # cancelled meanwhile: the result is discarded
            return
        self.finished.labels(job.endpoint, outcome).inc()
        logger.info("job %s %s in %.0f ms", job.id, outcome, (finished - started) * 1000)
        hook = job.meta.get("webhook")
        if hook:
            self.webhooks.later(job.id, job.owner, hook)


def _error(code: str, message: str, job_id: str) -> dict[str, str]:
    return {"code": code, "message": message, "request_id": f"job-{job_id}"}


def open_store(broker: str | None, data_dir: Path) -> JobStore:
    if broker is None:
        return SqliteJobStore(data_dir / "jobs" / "jobs.db")
    from frontend.jobs.redis_store import RedisJobStore  # redis only where it is configured

    return RedisJobStore(broker)

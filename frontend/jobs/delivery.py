"""Webhook deliveries of finished jobs, in threads of their own (a receiver that fails and is
retried with backoff never holds up a job worker), leased so that a delivery cut by a crash or
a shutdown is resumed by the next sweep, where it stopped."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import orjson

from frontend.core.config_sections import JobsSection
from frontend.crawl.policy import CrawlPolicy, IPAddress, Resolver
from frontend.jobs import webhooks
from frontend.jobs.store import JobStore, now
from frontend.jobs.views import view


class JobHost(Protocol):
    """What a sender reads of the JobService that owns it (which imports this module)."""

    config: JobsSection
    store: JobStore
    policy: CrawlPolicy
    resolver: Resolver
    secret_for: Any
    loop: asyncio.AbstractEventLoop | None
    stopping: threading.Event


class WebhookSender:
    def __init__(self, jobs: JobHost) -> None:
        self.jobs = jobs
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="webhook")

    def later(self, job_id: str, owner: str, hook: dict[str, Any]) -> None:
        """Deliver the finished job; the lease covers every remaining attempt."""
        config = self.jobs.config
        worst = config.webhook_attempts * config.webhook_timeout_seconds
        worst += config.webhook_backoff_seconds * 2**config.webhook_attempts + 10
        self.jobs.store.patch(job_id, {"webhook": {**hook, "lease_until": now() + worst}})
        self._pool.submit(self._deliver, job_id, owner, hook["url"])

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _deliver(self, job_id: str, owner: str, url: str) -> None:
        jobs, store, config = self.jobs, self.jobs.store, self.jobs.config
        job = store.get(job_id)
        if job is None:
            return
        body = orjson.dumps(view(job, store.result(job_id), for_webhook=True))
        hook = dict(job.meta.get("webhook") or {})
        attempts: list[dict[str, Any]] = list(hook.get("attempts") or [])

        def record(entry: dict[str, Any]) -> None:
            attempts.append(entry)
            store.patch(job_id, {"webhook": {**hook, "attempts": attempts}})

        def target() -> IPAddress:
            # The policy again at every attempt: DNS may have changed since the job was made.
            if jobs.loop is None or jobs.stopping.is_set():
                raise webhooks.Undeliverable("the service is shutting down")
            coro = webhooks.check_target(jobs.policy, jobs.resolver, url)
            return asyncio.run_coroutine_threadsafe(coro, jobs.loop).result(30)

        delivered = webhooks.deliver(
            url,
            body,
            jobs.secret_for(owner) or config.webhook_secret or "",
            job_id,
            target,
            range(len(attempts) + 1, config.webhook_attempts + 1),
            config.webhook_backoff_seconds,
            config.webhook_timeout_seconds,
            record,
            sleep=jobs.stopping.wait,  # returns at once when the service stops
        )
        if delivered is None:  # stopping: the next start resumes the remaining attempts
            store.patch(job_id, {"webhook": {**hook, "attempts": attempts, "lease_until": 0}})
            return
        store.patch(job_id, {"webhook": {"url": url, "attempts": attempts, "delivered": delivered}})

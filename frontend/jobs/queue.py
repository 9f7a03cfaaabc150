"""The huey broker (SQLite file in the data dir, or Redis) and its consumer's worker threads.

huey runs with no server (SqliteHuey) and on Redis (RedisHuey) behind one API, and its consumer
runs as threads inside the service or in `homelab-ai worker` processes on other machines. The
consumer's own `start()` installs signal handlers (main thread only, and it would replace
uvicorn's), so only its worker threads are started here; stopping sets its stop flag.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import Huey, RedisHuey, SqliteHuey
from huey.consumer import Consumer, Worker

from frontend.core.redis_options import reconnecting

logger = logging.getLogger(__name__)
TASK_NAME = "homelab_ai.run_job"


def make_huey(broker: str | None, data_dir: Path) -> Huey:
    # results=False: job records and results live in the job store, not in huey's.
    if broker is None:
        folder = data_dir / "jobs"
        folder.mkdir(parents=True, exist_ok=True)
        return SqliteHuey("homelab-ai", filename=str(folder / "queue.db"), results=False)
    import redis

    pool = redis.ConnectionPool.from_url(broker, **reconnecting())
    return RedisHuey("homelab-ai", connection_pool=pool, results=False, read_timeout=1)


def _wakeable_consumer(wake: threading.Event) -> type[Consumer]:
    """A consumer whose idle workers also wake when this process enqueues (SQLite has no
    blocking read: without this a job created here would wait for the next poll)."""

    class WakeableWorker(Worker):
        def sleep(self) -> None:
            delay: float = min(self.delay, self.max_delay)  # type: ignore[has-type]
            if wake.wait(delay):
                wake.clear()
                self.delay = self.default_delay
            else:
                self.delay = delay * self.backoff

    class WakeableConsumer(Consumer):
        worker_class = WakeableWorker

    return WakeableConsumer


class Workers:
    """huey's consumer worker threads, started and stopped with the app's lifespan."""

    def __init__(self, huey: Huey, run: Callable[[str], None], count: int, poll: float) -> None:
        self.huey = huey
        self.enqueue_task: Any = huey.task(name=TASK_NAME)(run)
        self.count = count
        self._consumer: Any = None
        self._poll = poll
        self._wake = threading.Event()

    def enqueue(self, job_id: str) -> None:
        self.enqueue_task(job_id)
        self._wake.set()

    def pending_ids(self) -> set[str]:
        return {str(task.args[0]) for task in self.huey.pending() if task.args}

    def start(self) -> None:
        if self.count <= 0:
            return
        self._consumer = _wakeable_consumer(self._wake)(
            self.huey,
            workers=self.count,
            worker_type="thread",
            periodic=False,
            initial_delay=min(0.05, self._poll),
            max_delay=self._poll,
            check_worker_health=False,
        )
        for _, thread in self._consumer.worker_threads:
            thread.start()
        logger.info("job workers: %d threads", self.count)

    def stop(self, timeout: float) -> bool:
        """Stop taking jobs; wait up to `timeout` for running ones. True if all stopped."""
        if self._consumer is None:
            return True
        self._consumer.stop_flag.set()
        self._wake.set()
        for _, thread in self._consumer.worker_threads:
            thread.join(timeout)
        return not any(thread.is_alive() for _, thread in self._consumer.worker_threads)

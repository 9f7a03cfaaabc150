"""`homelab-ai worker`: the app without its HTTP server, running queued jobs until SIGTERM.

It runs the same lifespan as `serve` (Triton client, models, browser) and so answers each job
exactly as the service would; with `jobs.broker: redis://...` it can run on another machine.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from frontend.core.config import Settings

logger = logging.getLogger(__name__)


async def run_worker(settings: Settings) -> int:
    from frontend.app import create_app

    app = create_app(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with app.router.lifespan_context(app):
        logger.info(
            "worker %s: %d threads on %s",
            app.state.jobs.worker_id,
            settings.jobs.workers,
            settings.jobs.broker or "SQLite in the data dir",
        )
        await stop.wait()
    logger.info("worker stopped")
    return 0

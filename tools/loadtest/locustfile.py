"""Mixed traffic for the Homelab AI API: embed (one text, a batch of 32), OCR, caption, crawl
of a loopback page, and status, weighted roughly as a homelab's clients would send them.

    python -m locust -f tools/loadtest/locustfile.py --host http://127.0.0.1:8000

(from the checkout's root, so `tools` imports). `python -m tools.loadtest` runs it against a
service it starts itself. The crawl task needs a page the service may reach:
HOMELAB_LOADTEST_CRAWL_URL (a loopback page whose host is in the service's
`crawl.allowed_hosts`); without it the crawl task does nothing. Every answer's status is
counted per task and written as JSON to HOMELAB_LOADTEST_STATUS_FILE when Locust quits:
Locust's own CSV only keeps the failures.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task

from tools.loadtest import payloads
from tools.loadtest.payloads import ALLOWED_STATUSES, CRAWL_URL_ENV, STATUS_FILE_ENV

# Generous: a request queued behind a full batcher on 2 busy cores may take seconds; the
# service's own limits (queue_timeout_seconds 30, crawl timeouts 15 s) end it before this.
REQUEST_TIMEOUT_SECONDS = 90.0

# Per task, per status: filled by the request listener below, written once at quit.
status_counts: defaultdict[str, Counter[int]] = defaultdict(Counter)


class HomelabUser(HttpUser):
    """One client of the service. Think times keep a user from looping on instant 503s, so
    the user count (not a tight retry loop) sets the offered load."""

    wait_time = between(0.2, 1.0)

    def _call(self, name: str, method: str, path: str, body: dict[str, Any] | None) -> None:
        with self.client.request(
            method,
            path,
            json=body,
            name=name,
            catch_response=True,
            timeout=REQUEST_TIMEOUT_SECONDS,
        ) as response:
            if response.status_code in ALLOWED_STATUSES:
                response.success()
            else:
                # The message is Locust's failure key: one row per (task, status).
                response.failure(f"HTTP {response.status_code}")

    @task(10)
    def embed_single(self) -> None:
        self._call("embed single", "POST", "/api/embed", payloads.embed_single_body())

    @task(3)
    def embed_batch(self) -> None:
        self._call("embed batch 32", "POST", "/api/embed", payloads.embed_batch_body())

    @task(3)
    def ocr(self) -> None:
        self._call("ocr", "POST", "/api/ocr", payloads.ocr_body())

    @task(3)
    def caption(self) -> None:
        self._call("caption", "POST", "/api/caption", payloads.caption_body())

    @task(1)
    def crawl(self) -> None:
        url = os.environ.get(CRAWL_URL_ENV)
        if url:
            self._call("crawl", "POST", "/api/crawl", payloads.crawl_body(url))

    @task(2)
    def status(self) -> None:
        self._call("status", "GET", "/api/status", None)


@events.request.add_listener
def count_status(name: str, response: Any = None, **_: Any) -> None:
    # Connection errors have no response (or Locust's status 0): counted as 0.
    status_counts[name][int(getattr(response, "status_code", 0) or 0)] += 1


@events.quitting.add_listener
def write_status_counts(**_: Any) -> None:
    path = os.environ.get(STATUS_FILE_ENV)
    if path:
        counts = {name: {str(k): v for k, v in c.items()} for name, c in status_counts.items()}
        Path(path).write_text(json.dumps(counts, indent=1, sort_keys=True))

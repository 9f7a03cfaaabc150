"""Site crawls and batches as jobs (POST /api/crawl/site and /api/crawl/batch with
`Prefer: respond-async`): pages stored as items while the crawl runs, progress, the summary as
the result, pagination, cancel, and jobs private to their key. Firecrawl's SDK over the same
jobs: /v2/crawl and /v2/batch/scrape."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
import pytest
from firecrawl import Firecrawl
from firecrawl.v2.types import ScrapeOptions

from frontend.core.config import SecuritySection
from frontend.core.security import ANONYMOUS, Security, hash_key
from frontend.jobs.store import Job
from frontend.triton.embedded import free_port
from tests.crawl.conftest import CRAWL, CrawlApi, start_api
from tests.crawl.site import Listener
from tests.crawl.tree import FAILED, Tree
from tests.faults.test_redis_outage import RedisServer

KEY = "hlai_sitejobs-test-key-0123456789"
OTHER = "hlai_sitejobs-other-key-012345678"
PAGE_SIZE = 3
SMALL_CRAWL = {"max_depth": 1, "sitemap": "skip", "page": {"wait_for_js": False}}


@pytest.fixture
def keyed(api: CrawlApi) -> Iterator[CrawlApi]:
    """Two API keys; item pages of PAGE_SIZE, so `next` links are followed."""
    before = api.app.state.security
    config = api.app.state.jobs.config
    size = config.items_page_size
    api.app.state.security = Security(
        SecuritySection(
            api_keys=[
                {"key_hash": hash_key(KEY), "name": "sitejobs"},
                {"key_hash": hash_key(OTHER), "name": "other"},
            ]
        )
    )
    config.items_page_size = PAGE_SIZE
    yield api
    api.app.state.security = before
    config.items_page_size = size


def client(api: CrawlApi, key: str = KEY) -> httpx.Client:
    return httpx.Client(base_url=api.url, timeout=60, headers={"Authorization": f"Bearer {key}"})


def start(http: httpx.Client, path: str, body: dict[str, Any]) -> str:
    response = http.post(path, json=body, headers={"Prefer": "respond-async"})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def all_items(http: httpx.Client, job_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    url: str | None = f"/api/jobs/{job_id}/items?limit=100"
    pages = 0
    while url:
        page = http.get(url).json()
        assert page["limit"] == PAGE_SIZE and len(page["items"]) <= PAGE_SIZE
        items += page["items"]
        url = page["next"]
        pages += 1
    assert pages >= 2
    return items


def test_a_site_crawl_job_stores_its_pages_as_they_finish(keyed: CrawlApi, tree: Tree) -> None:
    with client(keyed) as http:
        job_id = start(http, "/api/crawl/site", {"url": tree.url("/"), **SMALL_CRAWL})
        seen: list[tuple[str, int, int]] = []  # (status, pages stored, progress.done)
        while True:
            job = http.get(f"/api/jobs/{job_id}").json()
            stored = http.get(f"/api/jobs/{job_id}/items").json()["total"]
            seen.append((job["status"], stored, (job["progress"] or {}).get("done", 0)))
            if job["status"] not in ("queued", "running"):
                break
            time.sleep(0.1)
        # Pages were there before the end (/slow takes 1.5 s, so the rest finished first).
        assert any(status == "running" and stored > 0 for status, stored, _ in seen), seen
        dones = [done for _, _, done in seen]
        assert dones == sorted(dones)
        assert job["status"] == "succeeded", job
        summary = job["result"]
        assert summary["status"] == "completed" and summary["stop_reason"] == "done"
        items = all_items(http, job_id)
    loaded = [item for item in items if "error" not in item]
    failed = [item for item in items if "error" in item]
    assert len(loaded) == summary["done"] == job["progress"]["done"]
    assert len(failed) == summary["failed"] == job["progress"]["failed"]
    paths = {item["url"].removeprefix(tree.origin) for item in loaded}
    assert paths == {"/", "/s/0", "/s/1", "/s/2", "/slow"}
    assert {item["url"] for item in failed} == {tree.url(path) for path in FAILED}
    home = next(item for item in loaded if item["url"] == tree.url("/"))
    assert home["title"] == "Home" and home["depth"] == 0 and "Home" in home["text"]


def test_cancelling_a_crawl_job_stops_the_crawl(keyed: CrawlApi, tree: Tree) -> None:
    body = {"url": tree.url("/"), "delay_ms": 400, "concurrency": 1, "sitemap": "skip",
            "ignore_query_parameters": True, "page": {"wait_for_js": False}}  # fmt: skip
    with client(keyed) as http:
        job_id = start(http, "/api/crawl/site", body)
        deadline = time.monotonic() + 60
        while http.get(f"/api/jobs/{job_id}/items").json()["total"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        cancelled = http.delete(f"/api/jobs/{job_id}")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        time.sleep(2.0)  # the page in flight (if any) finishes
        settled = tree.hits.total()
        time.sleep(2.0)
        assert tree.hits.total() == settled  # nothing more was loaded
        page = http.get(f"/api/jobs/{job_id}/items").json()
        assert page["status"] == "cancelled" and page["total"] >= 2
        assert page["total"] < 20  # far from the whole tree


def test_another_key_does_not_see_a_crawl_job(keyed: CrawlApi, tree: Tree) -> None:
    with client(keyed) as http, client(keyed, OTHER) as other:
        job_id = start(http, "/api/crawl/site", {"url": tree.url("/s/0"), **SMALL_CRAWL})
        for path in (f"/api/jobs/{job_id}", f"/api/jobs/{job_id}/items"):
            response = other.get(path)
            assert response.status_code == 404
            assert response.json()["error"]["code"] == "NOT_FOUND"
        response = other.get(f"/v2/crawl/{job_id}")
        assert response.status_code == 404 and response.json()["success"] is False
        assert other.delete(f"/api/jobs/{job_id}").status_code == 404
        assert http.get(f"/api/jobs/{job_id}?wait=60").json()["status"] == "succeeded"


def test_a_batch_job_loads_each_url(keyed: CrawlApi, tree: Tree, trap: Listener) -> None:
    refused = f"http://127.0.0.1:{trap.port}/secret"
    urls = [tree.url("/s/0"), tree.url("/s/1"), refused, tree.url("/orphan/1")]
    with client(keyed) as http:
        job_id = start(http, "/api/crawl/batch", {"urls": urls, "page": {"wait_for_js": False}})
        job = http.get(f"/api/jobs/{job_id}?wait=60").json()
        assert job["status"] == "succeeded", job
        assert job["result"]["done"] == 3 and job["result"]["failed"] == 1
        items = sorted(all_items(http, job_id), key=lambda item: item["index"])
    assert [item["source_url"] for item in items] == urls
    assert [item.get("title") for item in items] == ["Section 0", "Section 1", None, "Orphan 1"]
    assert items[2]["error"]["code"] == "INVALID_REQUEST"
    assert trap.hits == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"urls": []}, "urls"),
        ({"urls": ["ftp://example.com/"]}, "urls[0]"),
        ({"urls": ["https://example.com/"], "page": {"timeout_ms": 10**7}}, None),
    ],
)
def test_bad_batches_are_refused(keyed: CrawlApi, body: dict[str, Any], field: str | None) -> None:
    with client(keyed) as http:
        response = http.post("/api/crawl/batch", json=body)
    assert response.status_code == 400, response.text
    if field is not None:
        assert field in response.text


def test_firecrawl_sdk_crawl_polls_and_pages(keyed: CrawlApi, tree: Tree) -> None:
    sdk = Firecrawl(api_key=KEY, api_url=keyed.url)
    result = sdk.crawl(
        tree.url("/s/0"),
        limit=20,
        sitemap="skip",
        poll_interval=1,
        timeout=120,
        scrape_options=ScrapeOptions(formats=["markdown", "links"]),
    )
    assert result.status == "completed"
    expected = {tree.url("/s/0")} | {tree.url(f"/s/0/p/{p}") for p in range(tree.pages)}
    urls = [document.metadata_typed.url for document in result.data]
    assert sorted(urls) == sorted(expected)  # every page once, over several `next` pages
    assert result.completed == result.total == len(expected)
    first = next(d for d in result.data if d.metadata_typed.url == tree.url("/s/0"))
    assert first.markdown is not None and "Section 0" in first.markdown
    assert first.links is not None and tree.url("/s/0/p/3") in first.links
    assert first.metadata_typed.status_code == 200 and first.metadata_typed.title == "Section 0"


def test_firecrawl_sdk_start_status_cancel(keyed: CrawlApi, tree: Tree) -> None:
    sdk = Firecrawl(api_key=KEY, api_url=keyed.url)
    started = sdk.start_crawl(tree.url("/"), limit=50, delay=1, max_concurrency=1,
                              sitemap="skip", crawl_entire_domain=True)  # fmt: skip
    assert started.url == f"{keyed.url}/v2/crawl/{started.id}"
    status = sdk.get_crawl_status(started.id)
    assert status.status == "scraping"
    assert sdk.cancel_crawl(started.id) is True
    assert sdk.get_crawl_status(started.id).status == "cancelled"
    assert sdk.cancel_crawl(started.id) is False  # already finished: 409
    assert sdk.get_crawl_errors(started.id).errors == []  # cancelled before any failure


def test_firecrawl_webhook_is_not_sent_and_the_answer_says_so(keyed: CrawlApi, tree: Tree) -> None:
    hook = {"url": "https://example.com/hook", "events": ["completed"], "metadata": {"a": 1}}
    with client(keyed) as http:
        for path, body in (
            ("/v2/crawl", {"url": tree.url("/"), "limit": 1, "webhook": hook}),
            ("/v2/batch/scrape", {"urls": [tree.url("/orphan/6")], "webhook": hook["url"]}),
        ):
            started = http.post(path, json=body)
            assert started.status_code == 200, started.text
            assert "not sent" in started.json()["warning"]
            http.delete(f"{path}/{started.json()['id']}")  # 200, or 409 if it already finished
        plain = http.post("/v2/crawl", json={"url": tree.url("/"), "limit": 1}).json()
        assert "warning" not in plain
        http.delete(f"/v2/crawl/{plain['id']}")


def test_firecrawl_sdk_batch_scrape(keyed: CrawlApi, tree: Tree) -> None:
    sdk = Firecrawl(api_key=KEY, api_url=keyed.url)
    urls = [tree.url(f"/orphan/{k}") for k in range(4)]
    job = sdk.batch_scrape(urls, formats=["markdown"], poll_interval=1, wait_timeout=120)
    assert job.status == "completed" and job.completed == 4
    sources = sorted(document.metadata_typed.source_url or "" for document in job.data)
    assert sources == urls
    assert all(d.markdown and "Orphan" in d.markdown for d in job.data)


def test_firecrawl_sdk_batch_errors(keyed: CrawlApi, tree: Tree, trap: Listener) -> None:
    sdk = Firecrawl(api_key=KEY, api_url=keyed.url)
    refused = f"http://127.0.0.1:{trap.port}/secret"
    started = sdk.start_batch_scrape([tree.url("/orphan/5"), refused], formats=["markdown"])
    assert started.url == f"{keyed.url}/v2/batch/scrape/{started.id}"
    deadline = time.monotonic() + 60
    while (status := sdk.get_batch_scrape_status(started.id)).status == "scraping":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert status.status == "completed" and status.completed == 1 and status.total == 2
    assert [d.metadata_typed.source_url for d in status.data] == [tree.url("/orphan/5")]
    errors = sdk.get_batch_scrape_errors(started.id)
    assert [(e.url, e.code) for e in errors.errors] == [(refused, "INVALID_REQUEST")]
    assert "refused" in errors.errors[0].error and errors.robots_blocked == []
    with client(keyed) as http:  # a batch is not a crawl, nor the reverse
        assert http.get(f"/v2/crawl/{started.id}").status_code == 404
        assert http.get(f"/v2/crawl/{started.id}/errors").status_code == 404
    assert trap.hits == 0


def test_firecrawl_refusals_come_before_the_job(keyed: CrawlApi, trap: Listener) -> None:
    with client(keyed) as http:
        response = http.post("/v2/crawl", json={"url": f"http://127.0.0.1:{trap.port}/"})
        assert response.status_code == 400 and response.json()["success"] is False
        response = http.post("/v2/crawl", json={"url": "https://example.com/", "limit": 10**7})
        assert response.status_code == 400 and response.json()["code"] == "INVALID_REQUEST"
        assert http.get("/v2/crawl/0123abcd").status_code == 404
    assert trap.hits == 0


def test_a_crawl_job_cut_by_a_crash_starts_again_from_scratch(api: CrawlApi, tree: Tree) -> None:
    """A job left `running` by a dead worker (its lease expired), with pages it had stored:
    recovery re-queues it, and the re-run clears those pages before crawling again."""
    jobs = api.app.state.jobs
    body = {"url": tree.url("/s/2"), "max_depth": 0, "page": {"wait_for_js": False}}
    dead = Job(
        id=uuid.uuid4().hex,
        owner=ANONYMOUS,
        endpoint="/api/crawl/site",
        status="running",
        created_at=time.time(),
        lease_until=time.time() - 1,
        worker="gone:1:dead",
        meta={"content_type": "application/json", "query": "", "runs": 1,
              "progress": {"done": 7, "failed": 0, "queued": 3, "total": 10}},
    )  # fmt: skip
    jobs.store.create(dead, orjson.dumps(body))
    for n in range(7):
        jobs.store.append_item(dead.id, orjson.dumps({"url": f"stale-{n}"}))
    jobs.sweep()
    with api.client() as http:
        job = http.get(f"/api/jobs/{dead.id}?wait=60").json()
        assert job["status"] == "succeeded" and job["runs"] == 2, job
        items = http.get(f"/api/jobs/{dead.id}/items").json()
    assert [item["url"] for item in items["items"]] == [tree.url("/s/2")]
    assert job["progress"] == {"done": 1, "failed": 0, "queued": 0, "total": 1}


def test_pages_over_the_result_cap_stop_the_crawl_and_fail_the_job(
    keyed: CrawlApi, tree: Tree
) -> None:
    config = keyed.app.state.jobs.config
    before = config.max_result_bytes
    config.max_result_bytes = 1_200  # a few pages of the tree (each ~300 bytes)
    try:
        with client(keyed) as http:
            job_id = start(http, "/api/crawl/site", {"url": tree.url("/"), **SMALL_CRAWL})
            job = http.get(f"/api/jobs/{job_id}?wait=60").json()
            items = http.get(f"/api/jobs/{job_id}/items").json()
    finally:
        config.max_result_bytes = before
    assert job["status"] == "failed" and job["error"]["code"] == "RESULT_TOO_LARGE", job
    assert job["http_status"] == 413 and "jobs.max_result_bytes" in job["error"]["message"]
    kept = sum(len(orjson.dumps(item)) for item in items["items"])
    assert 1 <= items["total"] < 7 and kept <= 1_200  # the pages that fitted are kept
    assert items["next"] is None


def test_a_crawl_job_on_redis_keeps_its_pages_there(tree: Tree) -> None:
    redis = RedisServer(free_port())
    redis.start()
    api = start_api(CRAWL, jobs={"broker": redis.url, "items_page_size": PAGE_SIZE})
    try:
        with api.client() as http:
            body = {"url": tree.url("/s/1"), **SMALL_CRAWL}
            job_id = start(http, "/api/crawl/site", body)
            job = http.get(f"/api/jobs/{job_id}?wait=60").json()
            assert job["status"] == "succeeded", job
            items = all_items(http, job_id)
        assert len(items) == job["result"]["done"] == 2 + tree.pages  # section, pages, home
        stored = api.app.state.jobs.store
        assert type(stored).__name__ == "RedisJobStore"
        assert stored.item_count(job_id) == len(items)
    finally:
        api.stop()
        redis.close()


def test_a_scrape_goes_before_the_background_pages_waiting_for_a_slot(
    api: CrawlApi, tree: Tree
) -> None:
    """Two batches of slow pages (3 s each) keep both slots busy with two more pages
    waiting; a scrape made then takes the next free slot, ahead of them: the site sees no
    slow page start between the first two and the scrape's page (a plain queue would start
    the two waiting ones first)."""
    slots, token = api.service.slots, uuid.uuid4().hex[:8]
    bodies = [
        {"urls": [tree.url(f"/slower?t={token}&b={b}&p={p}") for p in range(2)], "concurrency": 2}
        for b in range(2)
    ]
    with ThreadPoolExecutor(2) as pool, api.client() as http:
        batches = [pool.submit(http.post, "/api/crawl/batch", json=body) for body in bodies]
        deadline = time.monotonic() + 30
        while slots.waiting(background=True) < 2:  # 4 workers for 2 slots
            assert time.monotonic() < deadline, "the batches never filled the slots"
            time.sleep(0.02)
        body = {"url": tree.url(f"/orphan/{token}"), "wait_for_js": False}
        assert http.post("/api/crawl", json=body).status_code == 200
        for batch in batches:
            lines = [orjson.loads(line) for line in batch.result(timeout=120).text.splitlines()]
            assert lines[-1]["type"] == "summary" and lines[-1]["done"] == 2, lines[-1]
    paths = [path for _, path in list(tree.log) if token in path]
    scrape = paths.index(f"/orphan/{token}")
    assert sum(1 for path in paths[:scrape] if path.startswith("/slower")) == 2, paths

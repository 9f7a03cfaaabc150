"""The job store on SQLite and on a real redis-server: compare-and-set transitions (one claim
wins), owners in listings, partial updates; the webhook signature and address pinning; a job's
replay through the security middleware."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import ipaddress
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from frontend.core.config import SecuritySection
from frontend.core.security import (
    JOB_SCOPE_KEY,
    Security,
    SecurityMiddleware,
    hash_key,
    owner_id,
)
from frontend.jobs.redis_store import RedisJobStore
from frontend.jobs.store import Job, JobStore, SqliteJobStore
from frontend.jobs.webhooks import _pinned, sign
from frontend.triton.embedded import free_port
from tests.faults.test_redis_outage import RedisServer


@pytest.fixture(params=["sqlite", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[JobStore]:
    if request.param == "sqlite":
        opened: JobStore = SqliteJobStore(tmp_path / "jobs.db")
        yield opened
        opened.close()
        return
    server = RedisServer(free_port())
    server.start()
    try:
        opened = RedisJobStore(server.url)
        yield opened
        opened.close()
    finally:
        server.close()


def job(job_id: str, owner: str = "anonymous", created: float = 1.0) -> Job:
    return Job(job_id, owner, "/api/embed", "queued", created, meta={"progress": {"done": 0}})


def test_one_of_many_concurrent_claims_wins(store: JobStore) -> None:
    store.create(job("a"), b'{"texts": ["x"]}')
    with ThreadPoolExecutor(8) as pool:
        wins = list(
            pool.map(
                lambda w: store.transition("a", "queued", "running", new_worker=f"w{w}"), range(8)
            )
        )
    assert wins.count(True) == 1
    claimed = store.get("a")
    assert claimed is not None and claimed.status == "running"
    # only the claiming worker may renew or finish it
    other = "w0" if claimed.worker != "w0" else "w1"
    assert not store.transition("a", "running", "running", worker=other, lease_until=9.0)
    assert store.transition("a", "running", "running", worker=claimed.worker, lease_until=9.0)
    assert store.transition("a", "running", "cancelled")  # cancel needs no worker
    assert not store.transition("a", "running", "succeeded", worker=claimed.worker)
    assert store.counts()["cancelled"] == 1 and store.counts()["running"] == 0


def test_listing_is_per_owner_newest_first_and_paged(store: JobStore) -> None:
    for i in range(5):
        store.create(job(f"m{i}", "key-a", created=10.0 + i), b"{}")
    store.create(job("other", "key-b", created=20.0), b"{}")
    page, total = store.page("key-a", None, 2, 1)
    assert total == 5 and [j.id for j in page] == ["m3", "m2"]
    assert store.page("key-b", "queued", 10, 0)[1] == 1
    assert store.page("key-b", "running", 10, 0)[1] == 0


def test_body_result_and_partial_updates(store: JobStore) -> None:
    store.create(job("p"), b'{"texts": ["body"]}')
    store.patch("p", {"progress": {"done": 3, "queued": 2, "failed": 0}})
    store.patch("p", {"runs": 1})
    stored = store.get("p")
    assert stored is not None
    assert stored.meta["progress"] == {"done": 3, "queued": 2, "failed": 0}
    assert stored.meta["runs"] == 1
    assert store.body("p") == b'{"texts": ["body"]}' and store.result("p") is None
    store.set_result("p", b'{"ok": 1}')
    assert store.result("p") == b'{"ok": 1}'
    store.delete("p")
    assert store.get("p") is None and store.ids("queued") == []


def test_items_append_in_order_page_clear_and_go_with_the_job(store: JobStore) -> None:
    store.create(job("a"), b"{}")
    store.create(job("b"), b"{}")
    for n in range(5):
        store.append_item("a", b'{"n": %d}' % n)
    store.append_item("b", b'{"other": 1}')
    assert store.item_count("a") == 5 and store.item_count("b") == 1
    assert store.items("a", 0, 2) == [b'{"n": 0}', b'{"n": 1}']
    assert store.items("a", 3, 10) == [b'{"n": 3}', b'{"n": 4}']
    assert store.items("a", 5, 10) == []
    store.clear_items("a")  # a re-run starts from scratch
    assert store.item_count("a") == 0
    store.append_item("a", b'{"again": 0}')
    assert store.items("a", 0, 10) == [b'{"again": 0}']
    store.delete("b")
    assert store.item_count("b") == 0 and store.items("b", 0, 10) == []


def test_the_signature_is_an_hmac_sha256_of_the_exact_body() -> None:
    body = b'{"id":"x","status":"succeeded"}'
    expected = hmac.new(b"secret-0123456789", body, hashlib.sha256).hexdigest()
    assert sign("secret-0123456789", body) == f"sha256={expected}"
    assert sign("secret-0123456789", body + b" ") != f"sha256={expected}"


PINNED = [
    ("http://hooks.lan:8080/a?b=1", "192.168.1.5", "http://192.168.1.5:8080/a?b=1",
     "hooks.lan:8080", None),
    ("https://example.com/hook", "93.184.216.34", "https://93.184.216.34/hook",
     "example.com", "example.com"),
    ("https://v6.example/h", "2001:db8::1", "https://[2001:db8::1]/h", "v6.example", "v6.example"),
]  # fmt: skip


@pytest.mark.parametrize(("url", "address", "pinned", "host", "sni"), PINNED)
def test_a_delivery_connects_to_the_checked_address_with_the_original_host(
    url: str, address: str, pinned: str, host: str, sni: str | None
) -> None:
    target, headers, extensions = _pinned(url, ipaddress.ip_address(address))
    assert target == pinned and headers == {"Host": host}
    assert extensions.get("sni_hostname") == sni


def _replay(security: Security, owner: str) -> tuple[int, dict[str, Any]]:
    """Run a job's replay scope through the security middleware; (status, state seen)."""
    seen: dict[str, Any] = {}
    sent: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.update(scope["state"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "path": "/api/embed",
        "method": "POST",
        "headers": [],
        "client": ("127.0.0.1", 0),
        "app": SimpleNamespace(state=SimpleNamespace(security=security)),
        "state": {},
        JOB_SCOPE_KEY: {"id": "j", "owner": owner, "key_name": "a"},
    }
    asyncio.run(SecurityMiddleware(app)(scope, receive, send))
    return int(sent[0]["status"]), seen


def test_a_job_replays_as_its_owner_without_a_key_unless_the_key_was_revoked() -> None:
    key = "hlai_owner-key-0123456789abcdef"
    entry = {"key_hash": hash_key(key), "name": "a"}
    live = Security(SecuritySection(api_keys=[entry]))  # type: ignore[list-item]
    owner = owner_id(hash_key(key))
    assert live.policy.key_and_owner(key) == ("a", None, owner)
    status, seen = _replay(live, owner)
    assert status == 200 and seen["owner"] == owner and seen["api_key_name"] == "a"
    revoked = Security(SecuritySection(api_keys=[{**entry, "revoked": True}]))  # type: ignore[list-item]
    assert _replay(revoked, owner)[0] == 401
    assert _replay(revoked, "anonymous")[0] == 200

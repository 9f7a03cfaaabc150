"""The job store on Redis: one hash per job, a sorted set of ids, a set per status."""

from __future__ import annotations

from typing import Any

import orjson

from frontend.core.redis_options import reconnecting
from frontend.jobs.store import STATUSES, Changes, Job, JobStore


class RedisJobStore(JobStore):
    """One hash per job, a sorted set of all ids by creation time, a set per status.

    Transitions are WATCH/MULTI transactions, so they are atomic across frontends and workers.
    """

    def __init__(self, url: str, prefix: str = "homelab:jobs") -> None:
        import redis

        self._redis: Any = redis.Redis.from_url(url, **reconnecting())
        self._prefix = prefix

    def _key(self, job_id: str) -> str:
        return f"{self._prefix}:job:{job_id}"

    def _items_key(self, job_id: str) -> str:
        return f"{self._prefix}:items:{job_id}"

    def _status_key(self, status: str) -> str:
        return f"{self._prefix}:status:{status}"

    def _decode(self, job_id: str, raw: dict[bytes, bytes]) -> Job | None:
        if not raw:
            return None
        return Job(
            id=job_id,
            owner=raw[b"owner"].decode(),
            endpoint=raw[b"endpoint"].decode(),
            status=raw[b"status"].decode(),
            created_at=float(raw[b"created_at"]),
            lease_until=float(raw.get(b"lease_until", b"0")),
            worker=raw.get(b"worker", b"").decode(),
            meta=orjson.loads(raw[b"meta"]),
        )

    def create(self, job: Job, body: bytes) -> None:
        pipe = self._redis.pipeline()
        pipe.hset(
            self._key(job.id),
            mapping={
                "owner": job.owner,
                "endpoint": job.endpoint,
                "status": job.status,
                "created_at": repr(job.created_at),
                "lease_until": repr(job.lease_until),
                "worker": job.worker,
                "meta": orjson.dumps(job.meta),
                "body": body,
            },
        )
        pipe.zadd(f"{self._prefix}:all", {job.id: job.created_at})
        pipe.sadd(self._status_key(job.status), job.id)
        pipe.execute()

    def get(self, job_id: str) -> Job | None:
        fields = ["owner", "endpoint", "status", "created_at", "lease_until", "worker", "meta"]
        values = self._redis.hmget(self._key(job_id), fields)
        if values[0] is None:
            return None
        return self._decode(job_id, {f.encode(): v for f, v in zip(fields, values, strict=True)})

    def body(self, job_id: str) -> bytes | None:
        value = self._redis.hget(self._key(job_id), "body")
        return bytes(value) if value is not None else None

    def result(self, job_id: str) -> bytes | None:
        value = self._redis.hget(self._key(job_id), "result")
        return bytes(value) if value is not None else None

    def compare_and_set(
        self, job_id: str, from_status: str, status: str, worker: str | None, changes: Changes
    ) -> bool:
        import redis

        key = self._key(job_id)
        with self._redis.pipeline() as pipe:
            for _ in range(20):
                try:
                    pipe.watch(key)
                    current = pipe.hmget(key, ["status", "worker"])
                    if current[0] is None or current[0].decode() != from_status:
                        return False
                    if worker is not None and (current[1] or b"").decode() != worker:
                        return False
                    updates: dict[str, Any] = {"status": status, **changes}
                    if "lease_until" in changes:
                        updates["lease_until"] = repr(changes["lease_until"])
                    pipe.multi()
                    pipe.hset(key, mapping=updates)
                    if status != from_status:
                        pipe.srem(self._status_key(from_status), job_id)
                        pipe.sadd(self._status_key(status), job_id)
                    pipe.execute()
                    return True
                except redis.WatchError:
                    continue
        return False

    def patch(self, job_id: str, meta: dict[str, Any]) -> None:
        raw = self._redis.hget(self._key(job_id), "meta")
        if raw is not None:
            merged = {**orjson.loads(raw), **meta}
            self._redis.hset(self._key(job_id), "meta", orjson.dumps(merged))

    def set_result(self, job_id: str, result: bytes) -> None:
        self._redis.hset(self._key(job_id), "result", result)

    def page(
        self, owner: str | None, status: str | None, limit: int, offset: int
    ) -> tuple[list[Job], int]:
        # Homelab scale: walk the ids newest first and filter (no secondary index per owner).
        ids = [i.decode() for i in self._redis.zrevrange(f"{self._prefix}:all", 0, -1)]
        matched = []
        for job_id in ids:
            job = self.get(job_id)
            if job is None:
                continue
            if (owner is None or job.owner == owner) and (status is None or job.status == status):
                matched.append(job)
        return matched[offset : offset + limit], len(matched)

    def ids(self, status: str) -> list[str]:
        return [i.decode() for i in self._redis.smembers(self._status_key(status))]

    def counts(self) -> dict[str, int]:
        return {status: int(self._redis.scard(self._status_key(status))) for status in STATUSES}

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        pipe = self._redis.pipeline()
        pipe.delete(self._key(job_id), self._items_key(job_id))
        pipe.zrem(f"{self._prefix}:all", job_id)
        if job is not None:
            pipe.srem(self._status_key(job.status), job_id)
        pipe.execute()

    def append_item(self, job_id: str, item: bytes) -> None:
        self._redis.rpush(self._items_key(job_id), item)

    def items(self, job_id: str, offset: int, limit: int) -> list[bytes]:
        end = offset + limit - 1
        return [bytes(v) for v in self._redis.lrange(self._items_key(job_id), offset, end)]

    def item_count(self, job_id: str) -> int:
        return int(self._redis.llen(self._items_key(job_id)))

    def clear_items(self, job_id: str) -> None:
        self._redis.delete(self._items_key(job_id))

    def close(self) -> None:
        self._redis.close()

"""Job records next to the broker: an SQLite table in <data_dir>/jobs/, or Redis hashes.

A record is written before the client gets its 202 and changes state only through
compare-and-set transitions (queued -> running -> succeeded/failed, or -> cancelled), so two
workers that both see one job (a message re-enqueued by recovery) never both run it.
`meta` holds what only the job's own worker writes (progress, timings, the error, webhook
attempts); the result is a separate blob (the JSON body the synchronous call returned).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
FINISHED = frozenset({"succeeded", "failed", "cancelled"})


@dataclass
class Job:
    id: str
    owner: str
    endpoint: str
    status: str
    created_at: float
    lease_until: float = 0.0
    worker: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


class JobStore(Protocol):
    def create(self, job: Job, body: bytes) -> None: ...
    def get(self, job_id: str) -> Job | None: ...
    def body(self, job_id: str) -> bytes | None: ...
    def result(self, job_id: str) -> bytes | None: ...
    def transition(
        self,
        job_id: str,
        from_status: str,
        status: str,
        worker: str | None = None,
        lease_until: float | None = None,
        new_worker: str | None = None,
    ) -> bool: ...
    def patch(self, job_id: str, meta: dict[str, Any]) -> None: ...
    def set_result(self, job_id: str, result: bytes) -> None: ...
    def page(
        self, owner: str | None, status: str | None, limit: int, offset: int
    ) -> tuple[list[Job], int]: ...
    def ids(self, status: str) -> list[str]: ...
    def counts(self) -> dict[str, int]: ...
    def delete(self, job_id: str) -> None: ...
    def close(self) -> None: ...


_COLUMNS = "id, owner, endpoint, status, created_at, lease_until, worker, meta"


def _job(row: tuple[Any, ...]) -> Job:
    job_id, owner, endpoint, status, created, lease, worker = row[:7]
    return Job(job_id, owner, endpoint, status, created, lease, worker, orjson.loads(row[7]))


class SqliteJobStore:
    """One table in the data dir; one connection behind a lock (jobs are few, rows small)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("pragma journal_mode=wal")
        self._db.execute("pragma synchronous=normal")  # survives a SIGKILL (not a power cut)
        self._db.execute("pragma busy_timeout=10000")  # `homelab-ai worker`s share the file
        self._db.execute(
            "create table if not exists jobs (id text primary key, owner text not null, "
            "endpoint text not null, status text not null, created_at real not null, "
            "lease_until real not null default 0, worker text not null default '', "
            "meta blob not null, body blob, result blob)"
        )
        self._db.execute("create index if not exists jobs_owner on jobs (owner, created_at)")
        self._db.execute("create index if not exists jobs_status on jobs (status)")
        self._lock = threading.Lock()

    def _run(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def create(self, job: Job, body: bytes) -> None:
        self._run(
            f"insert into jobs ({_COLUMNS}, body) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            job.id,
            job.owner,
            job.endpoint,
            job.status,
            job.created_at,
            job.lease_until,
            job.worker,
            orjson.dumps(job.meta),
            body,
        )

    def get(self, job_id: str) -> Job | None:
        rows = self._run(f"select {_COLUMNS} from jobs where id = ?", job_id)
        return _job(rows[0]) if rows else None

    def body(self, job_id: str) -> bytes | None:
        rows = self._run("select body from jobs where id = ?", job_id)
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def result(self, job_id: str) -> bytes | None:
        rows = self._run("select result from jobs where id = ?", job_id)
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def transition(
        self,
        job_id: str,
        from_status: str,
        status: str,
        worker: str | None = None,
        lease_until: float | None = None,
        new_worker: str | None = None,
    ) -> bool:
        sets, args = ["status = ?"], [status]  # type: list[str], list[Any]
        if lease_until is not None:
            sets.append("lease_until = ?")
            args.append(lease_until)
        if new_worker is not None:
            sets.append("worker = ?")
            args.append(new_worker)
        where, where_args = "id = ? and status = ?", [job_id, from_status]
        if worker is not None:
            where += " and worker = ?"
            where_args.append(worker)
        with self._lock:
            cursor = self._db.execute(
                f"update jobs set {', '.join(sets)} where {where}", (*args, *where_args)
            )
            return cursor.rowcount == 1

    def patch(self, job_id: str, meta: dict[str, Any]) -> None:
        with self._lock:
            rows = self._db.execute("select meta from jobs where id = ?", (job_id,)).fetchall()
            if rows:
                merged = {**orjson.loads(rows[0][0]), **meta}
                self._db.execute(
                    "update jobs set meta = ? where id = ?", (orjson.dumps(merged), job_id)
                )

    def set_result(self, job_id: str, result: bytes) -> None:
        self._run("update jobs set result = ? where id = ?", result, job_id)

    def page(
        self, owner: str | None, status: str | None, limit: int, offset: int
    ) -> tuple[list[Job], int]:
        where, args = "1 = 1", []
        if owner is not None:
            where += " and owner = ?"
            args.append(owner)
        if status is not None:
            where += " and status = ?"
            args.append(status)
        total = self._run(f"select count(*) from jobs where {where}", *args)[0][0]
        rows = self._run(
            f"select {_COLUMNS} from jobs where {where} "
            "order by created_at desc, id limit ? offset ?",
            *args,
            limit,
            offset,
        )
        return [_job(row) for row in rows], int(total)

    def ids(self, status: str) -> list[str]:
        return [row[0] for row in self._run("select id from jobs where status = ?", status)]

    def counts(self) -> dict[str, int]:
        rows = self._run("select status, count(*) from jobs group by status")
        return {status: 0 for status in STATUSES} | {s: int(n) for s, n in rows}

    def delete(self, job_id: str) -> None:
        self._run("delete from jobs where id = ?", job_id)

    def close(self) -> None:
        with self._lock:
            self._db.close()


class RedisJobStore:
    """One hash per job, a sorted set of all ids by creation time, a set per status.

    Transitions are WATCH/MULTI transactions, so they are atomic across frontends and workers.
    """

    def __init__(self, url: str, prefix: str = "homelab:jobs") -> None:
        import redis

        self._redis: Any = redis.Redis.from_url(url)
        self._prefix = prefix

    def _key(self, job_id: str) -> str:
        return f"{self._prefix}:job:{job_id}"

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

    def transition(
        self,
        job_id: str,
        from_status: str,
        status: str,
        worker: str | None = None,
        lease_until: float | None = None,
        new_worker: str | None = None,
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
                    updates: dict[str, Any] = {"status": status}
                    if lease_until is not None:
                        updates["lease_until"] = repr(lease_until)
                    if new_worker is not None:
                        updates["worker"] = new_worker
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
        pipe.delete(self._key(job_id))
        pipe.zrem(f"{self._prefix}:all", job_id)
        if job is not None:
            pipe.srem(self._status_key(job.status), job_id)
        pipe.execute()

    def close(self) -> None:
        self._redis.close()


def open_store(broker: str | None, data_dir: Path) -> JobStore:
    if broker is None:
        return SqliteJobStore(data_dir / "jobs" / "jobs.db")
    return RedisJobStore(broker)


def now() -> float:
    return time.time()

"""Job records next to the broker: an SQLite table in <data_dir>/jobs/, or Redis hashes.

A record is written before the client gets its 202 and changes state only through
compare-and-set transitions (queued -> running -> succeeded/failed, or -> cancelled), so two
workers that both see one job (a message re-enqueued by recovery) never both run it.
`meta` holds what only the job's own worker writes (progress, timings, the error, webhook
attempts); the result is a separate blob (the JSON body the synchronous call returned). A
streaming job (a site crawl) also appends items (one per page, in order) as they finish: rows
keyed (job_id, seq) here, a Redis list there; they go with the job when it is deleted.
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


Changes = dict[str, Any]  # the columns a transition sets besides the status: lease_until, worker


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
    ) -> bool:
        """Compare-and-set: the job goes to `status` only if it is at `from_status` (and held by
        `worker`, where given), its lease and worker changed where given. Both stores inherit
        this and implement compare_and_set."""
        changes: dict[str, Any] = {}
        if lease_until is not None:
            changes["lease_until"] = lease_until
        if new_worker is not None:
            changes["worker"] = new_worker
        return self.compare_and_set(job_id, from_status, status, worker, changes)

    def compare_and_set(
        self, job_id: str, from_status: str, status: str, worker: str | None, changes: Changes
    ) -> bool: ...
    def patch(self, job_id: str, meta: dict[str, Any]) -> None: ...
    def set_result(self, job_id: str, result: bytes) -> None: ...
    def page(
        self, owner: str | None, status: str | None, limit: int, offset: int
    ) -> tuple[list[Job], int]: ...
    def ids(self, status: str) -> list[str]: ...
    def counts(self) -> dict[str, int]: ...
    def delete(self, job_id: str) -> None: ...
    def append_item(self, job_id: str, item: bytes) -> None: ...
    def items(self, job_id: str, offset: int, limit: int) -> list[bytes]: ...
    def item_count(self, job_id: str) -> int: ...
    def clear_items(self, job_id: str) -> None: ...
    def close(self) -> None: ...


_COLUMNS = "id, owner, endpoint, status, created_at, lease_until, worker, meta"


def _job(row: tuple[Any, ...]) -> Job:
    job_id, owner, endpoint, status, created, lease, worker = row[:7]
    return Job(job_id, owner, endpoint, status, created, lease, worker, orjson.loads(row[7]))


class SqliteJobStore(JobStore):
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
        self._db.execute(
            "create table if not exists job_items (job_id text not null, seq integer not null, "
            "item blob not null, primary key (job_id, seq))"
        )
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
        return self._blob("body", job_id)

    def result(self, job_id: str) -> bytes | None:
        return self._blob("result", job_id)

    def _blob(self, column: str, job_id: str) -> bytes | None:
        rows = self._run(f"select {column} from jobs where id = ?", job_id)
        return bytes(rows[0][0]) if rows and rows[0][0] is not None else None

    def compare_and_set(
        self, job_id: str, from_status: str, status: str, worker: str | None, changes: Changes
    ) -> bool:
        sets = ["status = ?", *(f"{column} = ?" for column in changes)]
        args: list[Any] = [status, *changes.values()]
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
        self.clear_items(job_id)

    def append_item(self, job_id: str, item: bytes) -> None:
        self._run(
            "insert into job_items (job_id, seq, item) values (?, (select coalesce(max(seq), -1) "
            "+ 1 from job_items where job_id = ?), ?)",
            job_id,
            job_id,
            item,
        )

    def items(self, job_id: str, offset: int, limit: int) -> list[bytes]:
        rows = self._run(
            "select item from job_items where job_id = ? order by seq limit ? offset ?",
            job_id,
            limit,
            offset,
        )
        return [bytes(row[0]) for row in rows]

    def item_count(self, job_id: str) -> int:
        return int(self._run("select count(*) from job_items where job_id = ?", job_id)[0][0])

    def clear_items(self, job_id: str) -> None:
        self._run("delete from job_items where job_id = ?", job_id)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def now() -> float:
    return time.time()

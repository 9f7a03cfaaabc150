"""Model downloads from the Hugging Face hub into the local HF cache, observable from asyncio.

One job, in a worker thread:

1. ``HfApi(endpoint).model_info(id, files_metadata=True, timeout=etag_timeout)``: a single
   request, which huggingface_hub never retries. It lists the files with their sizes and pins the
   commit, and it is what makes an unreachable hub fail fast: a closed port fails at once, a hub
   that accepts but never answers fails after ``etag_timeout`` seconds (10 by default).
2. ``select_files``: the files a PyTorch load needs (duplicate TF/Flax/ONNX/OpenVINO weights and
   .bin copies of safetensors weights are skipped).
3. ``hf_hub_download(id, file, revision=<commit>, cache_dir=<staging>)`` per file, into a staging
   cache ``hub/.download-XXXX`` that nothing else reads; huggingface_hub's own tqdm, silenced,
   counts the bytes into the job (huggingface_hub reports every 10 MB chunk, and at the end of
   each file).
4. ``import_model(<staging snapshot>, id, hub)``: blobs are copied into ``hub/models--ORG--NAME``
   and ``refs/main`` is switched last, so the model counts as downloaded only once it is whole.
5. The staging directory is removed, whatever happened.

Disk space is checked once the sizes are known (staging plus cache copy, and a margin); a disk
that fills up anyway (ENOSPC, a quota) fails the job with a message that says so, and the
staging directory goes with it, so the space comes back at once.

A model that ``is_downloaded`` already is reported done at once without any network access (to
move to a newer revision, delete the model and download it again).

Mid-download failures go through huggingface_hub's own resume logic: a connection that breaks off
is resumed up to 5 times (1 s apart) before the job fails; a stalled transfer waits
HF_HUB_DOWNLOAD_TIMEOUT (10 s) per attempt.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from frontend.models.cache import (
    check_hf_id,
    import_model,
    repo_dir,
    snapshot_path,
    snapshot_totals,
)
from frontend.models.hub_errors import DownloadCancelled, DownloadFailure, describe_error
from frontend.models.progress import byte_counter
from frontend.models.staging import create_staging, sweep_staging
from frontend.tasks.common import is_builtin

logger = logging.getLogger(__name__)

JobState = Literal["queued", "running", "done", "failed"]
DEFAULT_ENDPOINT = "https://huggingface.co"
MAX_FINISHED_JOBS = 200

# Alternative copies of the weights, skipped when the repo has PyTorch weights at its root: the
# tasks load safetensors/.bin with transformers or sentence-transformers (and export their own
# ONNX encoder when they want one).
ALTERNATE_WEIGHT_PATTERNS = (
    "*.h5",
    "*.msgpack",
    "*.ot",
    "*.tflite",
    "*.gguf",
    "*.mlmodel",
    "*.mlpackage/*",
    "coreml/*",
    "onnx/*",
    "openvino/*",
)
# Files every loadable model snapshot has at its root (frontend.models.cache.snapshot_path).
MARKER_FILES = ("config.json", "modules.json")


@dataclass
class DownloadJob:
    id: str
    model_id: str
    state: JobState
    bytes_done: int = 0
    bytes_total: int | None = None
    files_done: int = 0
    files_total: int | None = None
    error: str | None = None
    started_at: float = 0.0
    finished_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed")


def _is_torch_weight(name: str) -> bool:
    return name.endswith(".safetensors") or fnmatch.fnmatch(name, "pytorch_model*.bin")


def select_files(filenames: Iterable[str]) -> list[str]:
    """The repo files worth downloading, in a stable order.

    - TF/Flax/Rust/GGUF/CoreML/ONNX/OpenVINO weights are dropped when PyTorch weights
      (``*.safetensors`` or ``pytorch_model*.bin``) sit at the repo root.
    - ``pytorch_model*.bin`` (and its index) are dropped from a folder that has safetensors.
    """
    names = sorted(set(filenames))
    has_torch = any("/" not in name and _is_torch_weight(name) for name in names)
    safetensors_dirs = {
        str(PurePosixPath(name).parent) for name in names if name.endswith(".safetensors")
    }
    selected = []
    for name in names:
        path = PurePosixPath(name)
        if has_torch and any(fnmatch.fnmatch(name, p) for p in ALTERNATE_WEIGHT_PATTERNS):
            continue
        if str(path.parent) in safetensors_dirs and (
            fnmatch.fnmatch(path.name, "pytorch_model*.bin")
            or path.name == "pytorch_model.bin.index.json"
        ):
            continue
        selected.append(name)
    return selected


class DownloadManager:
    """Starts and tracks downloads; one job per model at a time, shared by concurrent callers.

    Jobs run in a thread pool (at most ``max_concurrent`` at once; the rest wait "queued") and
    update their DownloadJob in place, so any coroutine can poll ``get()`` for progress.
    """

    def __init__(
        self,
        hub_dir: Path,
        endpoint: str | None = None,
        etag_timeout: float = 10.0,
        *,
        max_concurrent: int = 2,
        token: str | bool | None = None,
    ) -> None:
        self.hub_dir = Path(hub_dir)
        # Read HF_ENDPOINT now: huggingface_hub freezes its own copy at import time.
        resolved = endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
        self.endpoint = resolved.rstrip("/")
        self.etag_timeout = etag_timeout
        self.token = token  # None: huggingface_hub's own (HF_TOKEN or the saved login)
        self.max_concurrent = max(1, max_concurrent)
        self._jobs: dict[str, DownloadJob] = {}
        self._active: dict[str, str] = {}  # model id -> id of its queued/running job
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._slots: asyncio.Semaphore | None = None
        self._executor: ThreadPoolExecutor | None = None

    # -- public API -------------------------------------------------------------------------

    async def start(self, model_id: str) -> DownloadJob:
        """Start downloading a model, or return the job already doing so.

        InvalidModelId for anything that is not ORG/NAME (before touching disk or network);
        ValueError for builtin engines, which have nothing to download.
        """
        check_hf_id(model_id)
        if is_builtin(model_id):
            raise ValueError(f"{model_id} ships with its Python package: nothing to download")
        active = self._active.get(model_id)
        if active is not None:
            return self._jobs[active]
        now = time.time()
        job = DownloadJob(id=uuid.uuid4().hex, model_id=model_id, state="queued", started_at=now)
        snapshot = snapshot_path(self.hub_dir, model_id)
        if snapshot is not None:
            files, total = snapshot_totals(snapshot)
            job.files_done = job.files_total = files
            job.bytes_done = job.bytes_total = total
            job.finished_at = now
            job.state = "done"
            self._remember(job)
            return job
        self._remember(job)
        self._active[model_id] = job.id
        cancel = self._cancel[job.id] = threading.Event()
        task = asyncio.create_task(self._run(job, cancel), name=f"download {model_id}")
        self._tasks[job.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(job.id, None))
        return job

    def get(self, job_id: str) -> DownloadJob | None:
        return self._jobs.get(job_id)

    def jobs(self) -> list[DownloadJob]:
        return list(self._jobs.values())

    def active_job(self, model_id: str) -> DownloadJob | None:
        """The queued or running job for a model, if any."""
        job_id = self._active.get(model_id)
        return self._jobs.get(job_id) if job_id else None

    async def wait(self, job_id: str) -> DownloadJob:
        """The job once it is done or failed (cancelling the waiter leaves the download going)."""
        job = self._jobs.get(job_id)
        if job is None:
            raise KeyError(job_id)
        task = self._tasks.get(job_id)
        if task is not None:
            await asyncio.shield(task)
        return job

    def cancel(self, job_id: str) -> bool:
        """Ask a queued/running job to stop; it ends "failed" with its staging removed."""
        event = self._cancel.get(job_id)
        job = self._jobs.get(job_id)
        if event is None or job is None or job.finished:
            return False
        event.set()
        return True

    def shutdown(self) -> None:
        """Ask every unfinished job to stop (for application shutdown); does not wait."""
        for job_id in list(self._cancel):
            self.cancel(job_id)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    # -- internals --------------------------------------------------------------------------

    def _remember(self, job: DownloadJob) -> None:
        self._jobs[job.id] = job
        finished = [j.id for j in self._jobs.values() if j.finished]
        for old in finished[: max(0, len(finished) - MAX_FINISHED_JOBS)]:
            self._jobs.pop(old, None)
            self._cancel.pop(old, None)

    async def _run(self, job: DownloadJob, cancel: threading.Event) -> None:
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.max_concurrent)
        try:
            async with self._slots:
                if cancel.is_set():
                    self._finish(job, DownloadCancelled("download cancelled"), "queued")
                    return
                job.state = "running"
                await self._in_thread(job, cancel)
        except asyncio.CancelledError:
            cancel.set()  # the thread stops at its next chunk and cleans up
            raise
        finally:
            if self._active.get(job.model_id) == job.id:
                del self._active[job.model_id]
            self._cancel.pop(job.id, None)

    async def _in_thread(self, job: DownloadJob, cancel: threading.Event) -> None:
        if self._executor is None:  # one worker per slot; a cancelled job's stops at its next chunk
            self._executor = ThreadPoolExecutor(self.max_concurrent, thread_name_prefix="download")
        await asyncio.get_running_loop().run_in_executor(self._executor, _Run(self, job, cancel))

    def _finish(self, job: DownloadJob, error: BaseException | None, stage: str) -> None:
        if error is not None:
            try:
                job.error = describe_error(error, job.model_id, self.endpoint, stage)
            except Exception:  # pragma: no cover - never leave a job without a final state
                job.error = f"download failed ({stage})"
        job.finished_at = time.time()
        job.state = "failed" if error is not None else "done"


class _Run:
    """One download, executed in its worker thread."""

    def __init__(self, manager: DownloadManager, job: DownloadJob, cancel: threading.Event):
        self.manager = manager
        self.job = job
        self.cancel = cancel
        self.stage = "contacting the hub"
        self.hub_dir = manager.hub_dir

    def __call__(self) -> None:
        """Never raises. The job turns done or failed only once the staging is gone."""
        staging: Path | None = None
        lock_fd: int | None = None
        error: BaseException | None = None
        try:
            self.hub_dir.mkdir(parents=True, exist_ok=True)
            sweep_staging(self.hub_dir)
            staging, lock_fd = create_staging(self.hub_dir)
            self._execute(staging)
        except BaseException as exc:
            logger.warning("download of %s failed while %s: %r", self.job.model_id, self.stage, exc)
            error = exc
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)
            if lock_fd is not None:
                os.close(lock_fd)
            self.manager._finish(self.job, error, self.stage)

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise DownloadCancelled("download cancelled")

    def _on_bytes(self, count: int) -> None:
        self._check_cancel()
        self.job.bytes_done += count

    def _execute(self, staging: Path) -> None:
        from huggingface_hub import HfApi, hf_hub_download

        job, manager = self.job, self.manager
        model_id = job.model_id
        self.stage = "listing the model's files"
        api = HfApi(endpoint=manager.endpoint, token=manager.token)
        info = api.model_info(model_id, files_metadata=True, timeout=manager.etag_timeout)
        sizes: dict[str, int | None] = {s.rfilename: s.size for s in info.siblings or []}
        names = select_files(sizes)
        if not any(marker in names for marker in MARKER_FILES):
            raise DownloadFailure(
                f"model {model_id} has no config.json or modules.json on the hub: "
                "not a model this server can load"
            )
        known = [sizes[name] for name in names]
        job.files_total = len(names)
        job.bytes_total = sum(s for s in known if s is not None) if None not in known else None
        self.stage = "checking the free disk space"
        self._check_disk_space()
        revision = info.sha or "main"
        progress = byte_counter(self._on_bytes)
        completed = 0
        for name in names:
            self.stage = f"downloading {name[:200]}"
            self._check_cancel()
            local = hf_hub_download(
                model_id,
                name,
                revision=revision,
                cache_dir=staging,
                endpoint=manager.endpoint,
                etag_timeout=manager.etag_timeout,
                token=manager.token,
                tqdm_class=progress,
            )
            size = sizes[name]
            completed += size if size is not None else Path(local).stat().st_size
            job.bytes_done = completed
            job.files_done += 1
        self.stage = "installing into the cache"
        self._check_cancel()
        self._install(self._staged_snapshot(staging, info.sha))

    def _check_disk_space(self) -> None:
        """The files land twice (staging, then the cache) before the staging copy goes."""
        total = self.job.bytes_total
        if not total:
            return
        try:
            free = shutil.disk_usage(self.hub_dir).free
        except OSError:
            return
        needed = 2 * total + (64 << 20)
        if free < needed:
            raise DownloadFailure(
                f"not enough disk space for {self.job.model_id}: about {needed >> 20} MB "
                f"needed, {free >> 20} MB free"
            )

    def _staged_snapshot(self, staging: Path, sha: str | None) -> Path:
        snapshots = repo_dir(staging, self.job.model_id) / "snapshots"
        if sha and (snapshots / sha).is_dir():
            return snapshots / sha
        found = [p for p in snapshots.iterdir() if p.is_dir()] if snapshots.is_dir() else []
        if len(found) != 1:
            raise DownloadFailure(
                f"model {self.job.model_id} changed on the hub during the download; try again"
            )
        return found[0]

    def _install(self, snapshot: Path) -> None:
        model_id = self.job.model_id
        target = repo_dir(self.hub_dir, model_id)
        existed = target.exists()
        try:
            import_model(snapshot, model_id, self.hub_dir)
        except BaseException:
            # Nothing half-imported stays behind for a model that was not there before.
            if not existed and snapshot_path(self.hub_dir, model_id) is None:
                shutil.rmtree(target, ignore_errors=True)
            raise
        if snapshot_path(self.hub_dir, model_id) is None:  # pragma: no cover - import_model bug
            raise DownloadFailure(f"model {model_id} did not install as a loadable snapshot")

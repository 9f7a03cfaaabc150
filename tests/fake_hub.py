"""A local stand-in for the Hugging Face hub's file API, so tests run huggingface_hub itself.

It answers what ``HfApi.model_info(files_metadata=True)`` and ``hf_hub_download`` ask for:

- ``GET /api/models/{org}/{name}[/revision/{rev}]``: ``sha`` and ``siblings`` (with ``size``,
  ``blobId`` and ``lfs`` when ``?blobs=true``).
- ``HEAD``/``GET /{org}/{name}/resolve/{rev}/{path}``: ``X-Repo-Commit`` and ``ETag`` (the git
  blob id) for regular files; for LFS files (``lfs_threshold`` bytes and up) a 302 to a second
  server (the "CDN", another origin as on the real hub) carrying ``X-Linked-Etag`` (the sha256)
  and ``X-Linked-Size``. Bodies honour ``Range: bytes=a-[b]``.
- Unknown repos: 404 ``X-Error-Code: RepoNotFound``; unknown revisions/files likewise.

Knobs, changeable while it runs: ``chunk_delay`` (seconds slept after each ``chunk_size`` bytes
of a body: slow mode), ``drop_after``/``drop_times`` (cut bodies longer than N bytes after N
bytes and close the connection, ``drop_times`` times or forever). Every request is logged in
``requests``; ``downloads()`` counts the file bodies served. ``HangingServer`` accepts
connections and never answers; ``closed_port()`` gives a port nobody listens on.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

LFS_POINTER_SIZE = 134


@dataclass(frozen=True)
class FakeFile:
    path: str  # repo-relative, "/"-separated
    data: bytes
    git_sha: str
    sha256: str
    lfs: bool

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass
class FakeRepo:
    repo_id: str
    sha: str
    files: dict[str, FakeFile]


@dataclass(frozen=True)
class LoggedRequest:
    server: str  # "hub" or "cdn"
    method: str
    path: str
    range: str | None


def _git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def load_repo(repo_id: str, folder: Path, lfs_threshold: int) -> FakeRepo:
    files: dict[str, FakeFile] = {}
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        data = path.read_bytes()
        files[name] = FakeFile(
            path=name,
            data=data,
            git_sha=_git_blob_sha(data),
            sha256=hashlib.sha256(data).hexdigest(),
            lfs=len(data) >= lfs_threshold,
        )
    commit = hashlib.sha1(
        "".join(f"{f.path}\0{f.git_sha}\n" for f in files.values()).encode()
    ).hexdigest()
    return FakeRepo(repo_id=repo_id, sha=commit, files=files)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, hub: FakeHub, role: str) -> None:
        self.hub = hub
        self.role = role
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    # -- routing ---------------------------------------------------------------------------

    def _route(self) -> None:
        hub = self.server.hub
        url = urlsplit(self.path)
        path = url.path
        hub._log(LoggedRequest(self.server.role, self.command, path, self.headers.get("Range")))
        if self.server.role == "cdn":
            match = re.fullmatch(r"/cdn/([0-9a-f]{64})", path)
            found = hub._blob(match.group(1)) if match else None
            if found is None:
                return self._error(404, "EntryNotFound", "Entry not found")
            repo, file = found
            return self._body(file, repo, {"ETag": f'"{file.sha256}"'})
        if path.startswith("/api/models/"):
            return self._model_info(path[len("/api/models/") :], parse_qs(url.query))
        parts = path.lstrip("/").split("/")
        if len(parts) >= 5 and parts[2] == "resolve":
            repo_id = f"{unquote(parts[0])}/{unquote(parts[1])}"
            return self._resolve(repo_id, unquote(parts[3]), unquote("/".join(parts[4:])))
        self._error(404, None, "Not found")

    def _repo(self, repo_id: str, revision: str | None) -> FakeRepo | None:
        repo = self.server.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        if revision is not None and revision not in ("main", repo.sha):
            self._error(404, "RevisionNotFound", "Invalid rev id", repo)
            return None
        return repo

    def _model_info(self, rest: str, query: dict[str, list[str]]) -> None:
        parts = [unquote(p) for p in rest.split("/")]
        if len(parts) == 4 and parts[2] == "revision":
            repo = self._repo(f"{parts[0]}/{parts[1]}", parts[3])
        elif len(parts) == 2:
            repo = self._repo(f"{parts[0]}/{parts[1]}", None)
        else:
            return self._error(404, None, "Not found")
        if repo is None:
            return
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for file in repo.files.values():
            sibling: dict[str, Any] = {"rfilename": file.path}
            if blobs:
                sibling["size"] = file.size
                sibling["blobId"] = file.git_sha
                if file.lfs:
                    sibling["lfs"] = {
                        "size": file.size,
                        "sha256": file.sha256,
                        "pointerSize": LFS_POINTER_SIZE,
                    }
            siblings.append(sibling)
        payload = {
            "_id": repo.sha[:24],
            "id": repo.repo_id,
            "modelId": repo.repo_id,
            "sha": repo.sha,
            "private": False,
            "disabled": False,
            "gated": False,
            "tags": [],
            "siblings": siblings,
        }
        self._json(200, payload)

    def _resolve(self, repo_id: str, revision: str, filename: str) -> None:
        repo = self._repo(repo_id, revision)
        if repo is None:
            return
        file = repo.files.get(filename)
        if file is None:
            return self._error(404, "EntryNotFound", "Entry not found", repo)
        headers = {"X-Repo-Commit": repo.sha}
        if not file.lfs:
            return self._body(file, repo, {**headers, "ETag": f'"{file.git_sha}"'})
        headers.update(
            {
                "ETag": f'"{file.git_sha}"',
                "X-Linked-Etag": f'"{file.sha256}"',
                "X-Linked-Size": str(file.size),
            }
        )
        hub = self.server.hub
        if hub.cdn is None:
            return self._body(file, repo, headers)
        self.send_response(302)
        headers["Location"] = f"{hub.cdn.url}/cdn/{file.sha256}"
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    # -- responses -------------------------------------------------------------------------

    def _json(self, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(
        self, status: int, code: str | None, message: str, repo: FakeRepo | None = None
    ) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        if repo is not None:
            headers["X-Repo-Commit"] = repo.sha
        self._json(status, {"error": message}, headers)

    def _body(self, file: FakeFile, repo: FakeRepo, headers: Mapping[str, str]) -> None:
        hub = self.server.hub
        size = file.size
        start, end, status = 0, size, 200
        requested = self.headers.get("Range")
        if requested:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", requested.strip())
            if match is None or int(match.group(1)) >= max(size, 1):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            start = int(match.group(1))
            end = min(size, int(match.group(2)) + 1) if match.group(2) else size
            status = 206
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.end_headers()
        if self.command == "HEAD":
            return
        hub._count_download(repo.repo_id, file.path)
        payload = file.data[start:end]
        limit = hub._take_drop(len(payload))
        sent = 0
        while sent < len(payload):
            piece = payload[sent : sent + hub.chunk_size]
            if limit is not None and sent + len(piece) >= limit:
                self.wfile.write(piece[: limit - sent])
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(piece)
            sent += len(piece)
            if hub.chunk_delay:
                time.sleep(hub.chunk_delay)


@dataclass
class FakeHub:
    """The fake hub and its CDN; use as a context manager (``with FakeHub(...) as hub``)."""

    repos_from: Mapping[str, Path] = field(default_factory=dict)
    lfs_threshold: int = 10_000
    chunk_size: int = 16 * 1024
    chunk_delay: float = 0.0
    drop_after: int | None = None
    drop_times: int | None = None  # None: every body longer than drop_after is cut
    use_cdn: bool = True

    def __post_init__(self) -> None:
        self.repos: dict[str, FakeRepo] = {}
        self.requests: list[LoggedRequest] = []
        self._downloads: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self.cdn: _Server | None = None
        self._threads: list[threading.Thread] = []
        for repo_id, folder in self.repos_from.items():
            self.add_repo(repo_id, folder)

    # -- set-up ----------------------------------------------------------------------------

    def add_repo(self, repo_id: str, folder: Path) -> FakeRepo:
        repo = load_repo(repo_id, folder, self.lfs_threshold)
        self.repos[repo_id] = repo
        return repo

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake hub is not running"
        return self._server.url

    def start(self) -> FakeHub:
        self._server = _Server(self, "hub")
        servers = [self._server]
        if self.use_cdn:
            self.cdn = _Server(self, "cdn")
            servers.append(self.cdn)
        for server in servers:
            thread = threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in (self._server, self.cdn):
            if server is not None:
                server.shutdown()
                server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads.clear()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- observations ----------------------------------------------------------------------

    def downloads(self, repo_id: str | None = None) -> Counter[str]:
        """How many times each file's body was served (GET, from the hub or the CDN)."""
        with self._lock:
            return Counter(
                {
                    path: count
                    for (repo, path), count in self._downloads.items()
                    if repo_id is None or repo == repo_id
                }
            )

    def count(self, method: str | None = None, prefix: str = "") -> int:
        with self._lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method) and r.path.startswith(prefix)
            )

    def resolve_url(self, repo_id: str, filename: str, revision: str = "main") -> str:
        return f"{self.url}/{repo_id}/resolve/{quote(revision)}/{quote(filename)}"

    # -- used by the handler ---------------------------------------------------------------

    def _log(self, request: LoggedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _count_download(self, repo_id: str, path: str) -> None:
        with self._lock:
            self._downloads[(repo_id, path)] += 1

    def _blob(self, sha256: str) -> tuple[FakeRepo, FakeFile] | None:
        for repo in self.repos.values():
            for file in repo.files.values():
                if file.sha256 == sha256:
                    return repo, file
        return None

    def _take_drop(self, length: int) -> int | None:
        """The byte count to cut this body at, if it is to be cut."""
        with self._lock:
            if self.drop_after is None or length <= self.drop_after:
                return None
            if self.drop_times is not None:
                if self.drop_times <= 0:
                    return None
                self.drop_times -= 1
            return self.drop_after


class HangingServer:
    """Accepts TCP connections and never answers; counts them."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.05)
        self.connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except (TimeoutError, OSError):
                continue
            self.connections.append(conn)

    def __enter__(self) -> HangingServer:
        self._thread.start()
        return self

    def __exit__(self, *args: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self.connections:
            conn.close()
        self._socket.close()


def closed_port() -> int:
    """A local port with nothing listening (bound once, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file under a folder (symlinks followed), keyed by "/"-separated relative path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file()
    }


def iter_tree(root: Path) -> Iterator[Path]:
    """Everything under a directory (for leftover checks)."""
    yield from sorted(Path(root).rglob("*"))

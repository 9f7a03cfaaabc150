"""What a failed download tells the API client: the hub's errors in words, no local paths."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from urllib.parse import urlsplit


class DownloadFailure(RuntimeError):
    """A failure whose message is safe and meant for the API client."""


class DownloadCancelled(DownloadFailure):
    pass


def _endpoint_label(endpoint: str) -> str:
    """scheme://host[:port] of the endpoint: no credentials, no path."""
    parts = urlsplit(endpoint)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def describe_error(exc: BaseException, model_id: str, endpoint: str, stage: str) -> str:
    """A message for the API client: what went wrong, with no local paths or internals."""
    import httpx2
    from huggingface_hub.errors import (
        FileMetadataError,
        GatedRepoError,
        HfHubHTTPError,
        OfflineModeIsEnabled,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    hub = f"the hub at {_endpoint_label(endpoint)}"
    for error in _chain(exc):
        if isinstance(error, DownloadFailure):
            return str(error)
        if isinstance(error, OfflineModeIsEnabled):
            return "downloads are disabled on this server (HF_HUB_OFFLINE is set)"
        if isinstance(error, GatedRepoError):
            return (
                f"model {model_id} is gated on the hub: accept its terms on the model page and "
                "give the server a Hugging Face token (HF_TOKEN)"
            )
        if isinstance(error, RepositoryNotFoundError):
            return f"model {model_id} not found on the hub (or it is private)"
        if isinstance(error, RevisionNotFoundError):
            return f"model {model_id}: the hub no longer has the revision being downloaded"
        if isinstance(error, RemoteEntryNotFoundError):
            return f"model {model_id}: a file the hub listed is missing on it ({stage})"
        if isinstance(error, HfHubHTTPError):
            status = error.response.status_code if error.response is not None else None
            if status in (401, 404):
                return f"model {model_id} not found on the hub (or it is private)"
            return f"{hub} answered HTTP {status} ({stage})"
        if isinstance(error, FileMetadataError):
            return f"{hub} does not answer like a Hugging Face hub ({stage}): check HF_ENDPOINT"
        if isinstance(error, httpx2.TimeoutException):
            return f"{hub} did not respond in time ({stage})"
        if isinstance(error, httpx2.ConnectError):
            return f"cannot connect to {hub} ({stage}): is it reachable from this server?"
        if isinstance(error, httpx2.TransportError):
            return f"the connection to {hub} broke off ({stage})"
    for error in _chain(exc):
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return (
                f"not enough disk space for {model_id}: the disk holding the model cache "
                f"filled up ({stage}); free some space and download it again"
            )
    if isinstance(exc, OSError):
        if "Consistency check failed" in str(exc):
            return f"a file arrived incomplete ({stage}); try again"
        if exc.errno:
            return f"local storage error ({stage}): {os.strerror(exc.errno)}"
    return f"download failed ({stage}): {type(exc).__name__}"

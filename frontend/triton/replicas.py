"""One Triton server among several: its gRPC client, whether it answers, and its load."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import tritonclient.grpc.aio as grpcaio
from tritonclient.utils import InferenceServerException

from frontend.triton.pipe import Pipe
from frontend.triton.serve import ADMIN_KEY_HEADER

logger = logging.getLogger(__name__)

# gRPC's default reconnect backoff grows to 120 s: a Triton that comes back would then stay
# unreachable from here for up to two minutes. Cap it so a recovered replica is seen quickly.
_CHANNEL_ARGS = [
    ("grpc.max_send_message_length", 2**31 - 1),
    ("grpc.max_receive_message_length", 2**31 - 1),
    ("grpc.initial_reconnect_backoff_ms", 250),
    ("grpc.min_reconnect_backoff_ms", 250),
    ("grpc.max_reconnect_backoff_ms", 2000),
    # No client keepalive pings: Triton's gRPC server (its defaults, and what the
    # --grpc-http2-* flags leave) allows one ping per 5 minutes without data, and answered the
    # 30 s pings of a long load call with GOAWAY "too_many_pings" (measured: a 210 s load died
    # so). Every call has a deadline instead, and a dead server is seen as UNAVAILABLE.
    ("grpc.keepalive_time_ms", 2**31 - 1),
]


def is_unreachable(exc: InferenceServerException) -> bool:
    """The request did not reach a serving Triton (refused, reset, shutting down)."""
    return str(exc.status() or "").endswith("UNAVAILABLE") and not is_model_missing(exc)


def is_model_missing(exc: InferenceServerException) -> bool:
    """This Triton does not have the model loaded (never loaded, unloaded, or restarted)."""
    status = str(exc.status() or "")
    return status.endswith("NOT_FOUND") or "unknown model" in str(exc.message() or "")


# Triton's restricted model-repository API checks ADMIN_KEY_HEADER (set in
# frontend.triton.serve): as is over HTTP, and with the prefix "triton-grpc-protocol-" over gRPC.
GRPC_ADMIN_KEY_HEADER = f"triton-grpc-protocol-{ADMIN_KEY_HEADER}"


@dataclass(eq=False)
class Replica:
    """A Triton server at one URL. Every replica holds the same models (the gateway sees to it)."""

    url: str
    # Triton's restricted model-repository API wants it (gRPC header GRPC_ADMIN_KEY_HEADER).
    admin_key: str | None = field(default=None, repr=False)
    client: grpcaio.InferenceServerClient = field(init=False)
    pipe: Pipe = field(init=False)
    up: bool = True
    in_flight: int = 0
    served: int = 0  # requests answered, for tests and the log
    down_since: float | None = None
    # Unloads that could not reach this replica: done when it comes back.
    pending_unloads: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.client = grpcaio.InferenceServerClient(self.url, channel_args=_CHANNEL_ARGS)
        self.pipe = Pipe(self.url, _CHANNEL_ARGS)  # small inference requests

    def mark_down(self, reason: str) -> None:
        if self.up:
            logger.warning("Triton %s is unreachable (%s); routing around it", self.url, reason)
        self.up = False
        if self.down_since is None:
            self.down_since = time.monotonic()

    def mark_up(self) -> None:
        if not self.up:
            down_for = time.monotonic() - (self.down_since or time.monotonic())
            logger.info("Triton %s is back after %.1f s", self.url, down_for)
        self.up = True
        self.down_since = None

    async def is_ready(self) -> bool:
        try:
            return bool(await self.client.is_server_ready(client_timeout=2.0))
        except InferenceServerException:
            return False

    async def is_model_ready(self, name: str) -> bool:
        try:
            return bool(await self.client.is_model_ready(name, client_timeout=2.0))
        except InferenceServerException:
            return False

    @property
    def _admin_headers(self) -> dict[str, str] | None:
        return {GRPC_ADMIN_KEY_HEADER: self.admin_key} if self.admin_key else None

    async def load(self, name: str, timeout: float) -> None:
        # load and unload are the only repository-API calls: credentials go here.
        await self.client.load_model(name, headers=self._admin_headers, client_timeout=timeout)

    async def model_state(self, name: str) -> str:
        """READY, LOADING, UNLOADING, UNAVAILABLE, or "" when Triton does not list it."""
        index = await self.client.get_model_repository_index(
            headers=self._admin_headers, as_json=True, client_timeout=5.0
        )
        for model in index.get("models", []):
            if model.get("name") == name:
                return str(model.get("state", ""))
        return ""

    async def unload(self, name: str, timeout: float = 30.0) -> None:
        await self.client.unload_model(name, headers=self._admin_headers, client_timeout=timeout)

    async def close(self) -> None:
        await self.pipe.close()
        await self.client.close()


def merge_statistics(total: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    """Add one replica's statistics to the total: counts and times add up, the rest is kept."""
    merged = dict(total)
    for key, value in more.items():
        current = merged.get(key)
        if key in ("name", "version"):
            merged.setdefault(key, value)
        elif key == "last_inference":
            merged[key] = max(int(current or 0), int(value))
        elif isinstance(value, dict):
            merged[key] = merge_statistics(current if isinstance(current, dict) else {}, value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            merged[key] = (current or 0) + value
        elif isinstance(value, str) and value.isdigit():  # JSON int64 values arrive as strings
            merged[key] = str(int(current or 0) + int(value))
        elif isinstance(value, list) and isinstance(current, list):
            merged[key] = current + value
        elif current is None:
            merged[key] = value
    return merged

"""The frontend's one door to Triton (async gRPC); the one place Triton errors become API errors."""

from __future__ import annotations

import logging
from typing import Any

import tritonclient.grpc as grpcclient
import tritonclient.grpc.aio as grpcaio
from tritonclient.utils import InferenceServerException

from frontend.core.errors import (
    INFERENCE_FAILED,
    INVALID_REQUEST,
    SERVICE_UNAVAILABLE,
    APIError,
)

logger = logging.getLogger(__name__)


class ModelNotLoaded(Exception):
    """Triton does not have the model loaded (never loaded, unloaded, or Triton restarted)."""


def triton_error(exc: InferenceServerException, model: str | None = None) -> Exception:
    """Map a Triton client error to what the frontend acts on; details stay in the log."""
    status = str(exc.status() or "")
    message = str(exc.message() or "")
    if status.endswith("NOT_FOUND") or "unknown model" in message:
        return ModelNotLoaded(model or "")
    logger.warning("triton error for model %s: %s %s", model, status, message[:500])
    if status.endswith(("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED")):
        return APIError(
            503, SERVICE_UNAVAILABLE, "the inference server is not reachable; retry shortly"
        )
    if status.endswith("INVALID_ARGUMENT"):
        return APIError(400, INVALID_REQUEST, "the model rejected the request input")
    return APIError(500, INFERENCE_FAILED, f"inference failed on model '{model}'")


# Triton's restricted model-repository API checks this header: as is over HTTP, and with the
# prefix "triton-grpc-protocol-" over gRPC.
ADMIN_KEY_HEADER = "admin-key"
GRPC_ADMIN_KEY_HEADER = f"triton-grpc-protocol-{ADMIN_KEY_HEADER}"


class TritonGateway:
    def __init__(
        self,
        url: str,
        infer_timeout: float = 120.0,
        load_timeout: float = 300.0,
        admin_key: str | None = None,
    ) -> None:
        self.url = url
        self.infer_timeout = infer_timeout
        self.load_timeout = load_timeout
        self.client = grpcaio.InferenceServerClient(url)
        # Sent with load/unload only: inference and health stay open to power users.
        self._admin_headers = {GRPC_ADMIN_KEY_HEADER: admin_key} if admin_key else None

    async def close(self) -> None:
        await self.client.close()

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

    async def load(self, name: str) -> None:
        """Load; raises InferenceServerException with Triton's (internal) message on failure."""
        await self.client.load_model(
            name, headers=self._admin_headers, client_timeout=self.load_timeout
        )

    async def unload(self, name: str) -> None:
        try:
            await self.client.unload_model(name, headers=self._admin_headers, client_timeout=30.0)
        except InferenceServerException as exc:
            raise triton_error(exc, name) from None

    async def infer(
        self,
        name: str,
        inputs: list[grpcclient.InferInput],
        outputs: list[str],
        parameters: dict[str, int | str] | None = None,
    ) -> grpcclient.InferResult:
        requested = [grpcclient.InferRequestedOutput(o) for o in outputs]
        try:
            return await self.client.infer(
                name,
                inputs,
                outputs=requested,
                client_timeout=self.infer_timeout,
                parameters=parameters,
            )
        except InferenceServerException as exc:
            raise triton_error(exc, name) from None

    async def statistics(self, name: str) -> dict[str, Any]:
        try:
            stats = await self.client.get_inference_statistics(name, as_json=True)
        except InferenceServerException as exc:
            raise triton_error(exc, name) from None
        models = stats.get("model_stats", [])
        return dict(models[0]) if models else {}

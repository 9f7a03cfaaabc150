"""The frontend's one door to Triton (async gRPC); the one place Triton errors become API errors.

The gateway may front several Triton servers ("replicas", `triton.url` listing several
addresses). They are one logical server: every model is loaded on (and unloaded from) all of
them, inference goes to the replica with the fewest requests in flight (ties rotate), and a
replica that cannot be reached is routed around and probed until it answers again; then the
models it missed are loaded on it before it takes requests. A request that never reached a
Triton (refused, reset, server stopping) is retried on another replica. Inference is
idempotent, so a request cut off mid-way on a dying server is retried too; a timeout is not
(the server was reached and may still be working on it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import tritonclient.grpc as grpcclient
from tritonclient.grpc._utils import get_error_grpc
from tritonclient.utils import InferenceServerException

from frontend.core.errors import INFERENCE_FAILED, APIError, InvalidRequest, Unavailable
from frontend.triton.pipe import MAX_PIPED_BYTES, inference_request
from frontend.triton.replicas import Replica, is_model_missing, is_unreachable, merge_statistics

logger = logging.getLogger(__name__)


class ModelNotLoaded(Exception):
    """Triton does not have the model loaded (never loaded, unloaded, or Triton restarted)."""


class ModelUnhealthy(Exception):
    """The model's stub process died or stopped answering; Triton 2.51 never restarts it."""


class InferenceTimeout(Exception):
    """No answer within triton.inference_timeout_seconds (a hung model process, or overload)."""


def is_stub_unhealthy(message: str) -> bool:
    # python_backend's words for a stub that died, was stopped or does not answer its health
    # checks ("Stub process 'minilm_0_0' is not healthy.")
    return "is not healthy" in message or "Stub process" in message


def triton_error(exc: InferenceServerException, model: str | None = None) -> Exception:
    """Map a Triton client error to what the frontend acts on; details stay in the log."""
    status = str(exc.status() or "")
    message = str(exc.message() or "")
    if is_model_missing(exc):
        return ModelNotLoaded(model or "")
    logger.warning("triton error for model %s: %s %s", model, status, message[:500])
    if is_stub_unhealthy(message):
        return ModelUnhealthy(message[:300])
    if status.endswith("DEADLINE_EXCEEDED"):
        return InferenceTimeout(model or "")
    if status.endswith(("UNAVAILABLE", "CANCELLED")):
        return unavailable()
    if status.endswith("INVALID_ARGUMENT"):
        return InvalidRequest("the model rejected the request input")
    return APIError(500, INFERENCE_FAILED, f"inference failed on model '{model}'")


def unavailable() -> APIError:
    return Unavailable("the inference server is not reachable; retry shortly")


class TritonGateway:
    def __init__(
        self,
        url: str | list[str],
        infer_timeout: float = 120.0,
        load_timeout: float = 300.0,
        probe_interval: float = 1.0,
        admin_key: str | None = None,
    ) -> None:
        self.urls = [url] if isinstance(url, str) else list(url)
        if not self.urls:
            raise ValueError("TritonGateway needs at least one Triton address")
        self.url = ",".join(self.urls)
        self.infer_timeout = infer_timeout
        self.load_timeout = load_timeout
        self.probe_interval = probe_interval
        # The key goes with load/unload only: inference and health stay open to power users.
        self.replicas = [Replica(u, admin_key=admin_key) for u in self.urls]
        self._models: set[str] = set()  # loaded through this gateway: every replica holds them
        self._turn = 0
        self._prober: asyncio.Task[None] | None = None
        self._healing: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._closed = False

    async def close(self) -> None:
        self._closed = True
        tasks = [t for t in (self._prober, *self._healing.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for replica in self.replicas:
            await replica.close()

    def replica_states(self) -> list[dict[str, Any]]:
        return [
            {"url": r.url, "up": r.up, "in_flight": r.in_flight, "served": r.served}
            for r in self.replicas
        ]

    async def is_ready(self) -> bool:
        """At least one replica is ready.

        A replica is taken out of rotation only when a request cannot reach it, not for a slow
        readiness answer (a busy server is not a dead one).
        """
        return any(await asyncio.gather(*(r.is_ready() for r in self.replicas)))

    async def is_model_ready(self, name: str) -> bool:
        """Ready on any replica (an unload is finished when no replica has it any more)."""
        return any(await asyncio.gather(*(r.is_model_ready(name) for r in self.replicas)))

    async def load(self, name: str) -> None:
        """Load on every reachable replica; raises InferenceServerException on failure.

        A replica that cannot be reached gets the model when it comes back. If the load fails
        on one replica (bad model, out of memory), it is unloaded from the others again so
        that every replica holds the same models.
        """
        targets = self._candidates(set())
        results = await asyncio.gather(
            *(self._load_on(r, name) for r in targets), return_exceptions=True
        )
        loaded, failures = [], []
        for replica, result in zip(targets, results, strict=True):
            if result is None:
                loaded.append(replica)
            elif isinstance(result, InferenceServerException) and is_unreachable(result):
                self._mark_down(replica, str(result.message())[:200])
            elif isinstance(result, BaseException):
                failures.append(result)
        if failures:
            for replica in loaded:
                with contextlib.suppress(InferenceServerException):
                    await replica.unload(name)
            raise failures[0]
        if not loaded:
            raise InferenceServerException(
                msg="no Triton server is reachable", status="StatusCode.UNAVAILABLE"
            )
        self._models.add(name)
        for replica in self.replicas:
            replica.pending_unloads.discard(name)

    async def _load_on(self, replica: Replica, name: str) -> None:
        healing = self._healing.get((replica.url, name))
        if healing is not None:  # the model is being put back on this replica already
            await asyncio.gather(healing, return_exceptions=True)
            if await replica.is_model_ready(name):
                return
        await replica.load(name, self.load_timeout)

    async def unload(self, name: str) -> None:
        """Unload from every replica; a replica that cannot be reached does it when back.

        Replicas out of rotation are tried too (briefly): one may be back already, and an
        unload must free the memory now, not at the next probe.
        """
        self._models.discard(name)
        results = await asyncio.gather(
            *(r.unload(name, timeout=30.0 if r.up else 3.0) for r in self.replicas),
            return_exceptions=True,
        )
        for replica, result in zip(self.replicas, results, strict=True):
            if isinstance(result, InferenceServerException):
                if not is_unreachable(result) and replica.up:
                    raise triton_error(result, name) from None
                replica.pending_unloads.add(name)  # done when it is back
                self._mark_down(replica, str(result.message())[:200])
            elif isinstance(result, BaseException):
                raise result

    def _candidates(self, tried: set[Replica]) -> list[Replica]:
        candidates = [r for r in self.replicas if r.up and r not in tried]
        if not candidates and not any(r.up for r in self.replicas):
            # Nothing is known to be up: try the others anyway (one may be back already).
            candidates = [r for r in self.replicas if r not in tried]
        return candidates

    def _pick(self, tried: set[Replica]) -> Replica | None:
        """The untried replica with the fewest requests in flight; ties go round-robin."""
        candidates = self._candidates(tried)
        if not candidates:
            return None
        start = self._turn % len(self.replicas)
        self._turn += 1
        order = self.replicas[start:] + self.replicas[:start]
        return min((r for r in order if r in candidates), key=lambda r: r.in_flight)

    async def infer(
        self,
        name: str,
        inputs: list[grpcclient.InferInput],
        outputs: list[str],
        parameters: dict[str, int | str] | None = None,
    ) -> grpcclient.InferResult:
        requested = [grpcclient.InferRequestedOutput(o) for o in outputs]
        request = inference_request(name, inputs, requested, parameters)
        piped = request.ByteSize() <= MAX_PIPED_BYTES
        tried: set[Replica] = set()
        while (replica := self._pick(tried)) is not None:
            tried.add(replica)
            replica.in_flight += 1
            try:
                if piped:  # small: over the replica's open stream, unary where it cannot
                    try:
                        response = await replica.pipe.infer(request, self.infer_timeout)
                    except TimeoutError:
                        deadline = InferenceServerException(
                            msg="Deadline Exceeded", status="StatusCode.DEADLINE_EXCEEDED"
                        )
                        raise triton_error(deadline, name) from None
                    if response is not None:
                        replica.served += 1
                        return grpcclient.InferResult(response)
                result = grpcclient.InferResult(
                    await replica.pipe.unary(request, self.infer_timeout)
                )
            except InferenceServerException as exc:
                if is_unreachable(exc):
                    self._mark_down(replica, str(exc.message())[:200])
                    continue
                if is_model_missing(exc) and name in self._models and self._candidates(tried):
                    # This replica lost the model (it restarted): put it back in the
                    # background and let another replica answer meanwhile.
                    self._heal(replica, name)
                    continue
                raise triton_error(exc, name) from None
            finally:
                replica.in_flight -= 1
            replica.served += 1
            return result
        raise unavailable()

    async def stream(
        self,
        name: str,
        inputs: list[grpcclient.InferInput],
        outputs: list[str],
        final_output: str,
        parameters: dict[str, int | str] | None = None,
    ) -> AsyncIterator[grpcclient.InferResult]:
        """One request to a decoupled model over gRPC's stream API: its responses as they come,
        up to the first that carries `final_output` (the model's last). Closing the iterator
        cancels the stream (Triton then reports the request cancelled to the model). A replica
        that cannot be reached is tried no more; one that answered is never retried."""
        requested = [grpcclient.InferRequestedOutput(o) for o in outputs]
        request: dict[str, Any] = {"model_name": name, "inputs": inputs, "outputs": requested}
        if parameters:
            request["parameters"] = parameters
        tried: set[Replica] = set()
        while (replica := self._pick(tried)) is not None:
            tried.add(replica)
            finished = asyncio.Event()

            async def requests(done: asyncio.Event) -> AsyncIterator[dict[str, Any]]:
                yield request
                await done.wait()  # a half-closed stream may drop the responses still due

            replica.in_flight += 1
            answered = False
            responses = replica.client.stream_infer(
                requests(finished), stream_timeout=self.infer_timeout
            )
            try:
                async for result, error in responses:
                    if error is not None:
                        raise error
                    answered = True
                    yield result
                    if result.get_output(final_output) is not None:
                        replica.served += 1
                        return
                raise unavailable()  # the stream ended without its final response
            except grpc.RpcError as rpc:
                exc = get_error_grpc(rpc)  # as tritonclient (and Pipe.unary) map it
                if is_unreachable(exc) and not answered:
                    self._mark_down(replica, str(exc.message())[:200])
                    continue
                raise triton_error(exc, name) from None
            except InferenceServerException as exc:
                raise triton_error(exc, name) from None
            finally:
                finished.set()
                responses.cancel()
                replica.in_flight -= 1
        raise unavailable()

    async def model_states(self, name: str) -> list[str]:
        """The model's state on each reachable replica (READY, LOADING, UNAVAILABLE...)."""
        states = []
        for replica in self.replicas:
            try:
                states.append(await replica.model_state(name))
            except InferenceServerException as exc:
                if not is_unreachable(exc) and "DEADLINE" not in str(exc.status()):
                    raise triton_error(exc, name) from None
        return states

    async def statistics(self, name: str) -> dict[str, Any]:
        """The model's inference statistics, summed over the reachable replicas."""
        merged: dict[str, Any] = {}
        for replica in self.replicas:
            try:
                stats = await replica.client.get_inference_statistics(name, as_json=True)
            except InferenceServerException as exc:
                if is_unreachable(exc):
                    continue
                raise triton_error(exc, name) from None
            models = stats.get("model_stats", [])
            if models:
                merged = merge_statistics(merged, dict(models[0]))
        return merged

    # --- replicas going down and coming back ---------------------------------------------

    def _mark_down(self, replica: Replica, reason: str) -> None:
        replica.mark_down(reason)
        if not self._closed and (self._prober is None or self._prober.done()):
            self._prober = asyncio.create_task(self._probe(), name="triton-replica-prober")

    async def _probe(self) -> None:
        """While a replica is down: check it every probe_interval; resync it once it is ready."""
        while not self._closed and any(not r.up for r in self.replicas):
            await asyncio.sleep(self.probe_interval)
            for replica in [r for r in self.replicas if not r.up]:
                if not await replica.is_ready():
                    continue
                try:
                    await self._resync(replica)
                except InferenceServerException as exc:
                    logger.warning("Triton %s: resync failed: %s", replica.url, exc.message())
                    continue
                replica.mark_up()

    async def _resync(self, replica: Replica) -> None:
        """Give a returning replica the models the others hold, and drop the ones they do not."""
        for name in sorted(replica.pending_unloads - self._models):
            await replica.unload(name)
        replica.pending_unloads.clear()
        wanted = set(self._models)
        for name in sorted(wanted):
            if await replica.is_model_ready(name):
                continue
            logger.info("Triton %s: loading %s (missed while it was down)", replica.url, name)
            try:
                await replica.load(name, self.load_timeout)
            except InferenceServerException as exc:
                if is_unreachable(exc):
                    raise
                logger.warning("Triton %s: loading %s failed: %s", replica.url, name, exc.message())
        for name in wanted - self._models:  # unloaded elsewhere while this one was loading
            await replica.unload(name)

    def _heal(self, replica: Replica, name: str) -> None:
        key = (replica.url, name)
        if key in self._healing or self._closed:
            return
        task = asyncio.create_task(self._heal_one(replica, name), name=f"triton-heal-{name}")
        self._healing[key] = task
        task.add_done_callback(lambda _: self._healing.pop(key, None))

    async def _heal_one(self, replica: Replica, name: str) -> None:
        logger.info("Triton %s lost model %s; loading it there again", replica.url, name)
        try:
            await replica.load(name, self.load_timeout)
        except InferenceServerException as exc:
            if is_unreachable(exc):
                self._mark_down(replica, str(exc.message())[:200])
            else:
                logger.warning("Triton %s: reloading %s failed: %s", replica.url, name, exc)
            return
        if name not in self._models:  # unloaded meanwhile
            with contextlib.suppress(InferenceServerException):
                await replica.unload(name)

"""Small inference requests over one open gRPC stream (frontend.triton.pipe), on the real Triton.

The stream is a shortcut: its answers must be the unary call's, and wherever it cannot give
a plain answer (the model refused the request, the stream broke, a deadline passed) the
gateway must fail exactly as the unary call does.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from frontend.core.errors import APIError, InvalidRequest
from frontend.triton import pipe as pipe_module
from frontend.triton.codecs import fp32_matrix, texts_input
from frontend.triton.embedded import EmbeddedTriton
from frontend.triton.gateway import InferenceTimeout, ModelNotLoaded, TritonGateway
from tests.integration.conftest import ADMIN_KEY, RunningApi

pytestmark = pytest.mark.integration

MODEL = "minilm"
TEXTS = [f"sentence number {i}: the stream carries many small requests" for i in range(24)]


def unary_vectors(triton: EmbeddedTriton, texts: list[str]) -> np.ndarray:
    """One plain unary call per text (the session's minilm takes batches of at most 16)."""
    rows = []
    with grpcclient.InferenceServerClient(triton.grpc_url) as client:
        for text in texts:
            result = client.infer(MODEL, [texts_input([text])], outputs=None)
            rows.append(fp32_matrix(result, "EMBEDDING", 1))
    return np.concatenate(rows)


async def with_gateway(triton: EmbeddedTriton, timeout: float = 60.0) -> TritonGateway:
    gateway = TritonGateway(triton.grpc_url, infer_timeout=timeout, admin_key=ADMIN_KEY)
    await gateway.load(MODEL)
    return gateway


async def vectors(gateway: TritonGateway, texts: list[str]) -> np.ndarray:
    result = await gateway.infer(MODEL, [texts_input(texts)], ["EMBEDDING"])
    return fp32_matrix(result, "EMBEDDING", len(texts))


def test_concurrent_requests_get_their_own_answers(triton: EmbeddedTriton) -> None:
    """24 requests at once on one stream, answered in whatever order Triton finishes them:
    each caller gets the vector of its own text, equal to a unary call's."""

    async def scenario() -> tuple[list[np.ndarray], int]:
        gateway = await with_gateway(triton)
        try:
            answers = await asyncio.gather(*(vectors(gateway, [text]) for text in TEXTS))
            return list(answers), gateway.replicas[0].pipe.piped
        finally:
            await gateway.close()

    answers, piped = asyncio.run(scenario())
    assert piped == len(TEXTS)  # every one went over the stream
    expected = unary_vectors(triton, TEXTS)
    np.testing.assert_allclose(np.concatenate(answers), expected, atol=1e-5)


def test_refused_requests_fail_as_unary_ones_and_the_stream_stays(
    triton: EmbeddedTriton,
) -> None:
    """A request the model refuses gets the unary call's error (the stream's error answers
    carry no status code), and the next request still goes over the same stream."""

    async def scenario() -> None:
        gateway = await with_gateway(triton)
        pipe = gateway.replicas[0].pipe
        try:
            await vectors(gateway, ["first"])
            stream = pipe._reader
            wrong_shape = grpcclient.InferInput("TEXT", [1, 2], "BYTES")
            wrong_shape.set_data_from_numpy(np.array([[b"a", b"b"]], dtype=np.object_))
            with pytest.raises(InvalidRequest):  # Triton's INVALID_ARGUMENT, as unary gives
                await gateway.infer(MODEL, [wrong_shape], ["EMBEDDING"])
            not_utf8 = grpcclient.InferInput("TEXT", [1, 1], "BYTES")
            not_utf8.set_data_from_numpy(np.array([[b"\xff\xfe"]], dtype=np.object_))
            with pytest.raises(APIError) as failed:  # the model's own error: 500, no details
                await gateway.infer(MODEL, [not_utf8], ["EMBEDDING"])
            assert failed.value.status == 500
            with pytest.raises(ModelNotLoaded):
                await gateway.infer("no-such-model", [texts_input(["x"])], ["EMBEDDING"])
            await vectors(gateway, ["after the errors"])
            assert pipe._reader is stream and pipe.piped == 2
        finally:
            await gateway.close()

    asyncio.run(scenario())


def test_a_deadline_is_an_inference_timeout_and_the_stream_goes_on(
    triton: EmbeddedTriton,
) -> None:
    async def scenario() -> None:
        gateway = await with_gateway(triton, timeout=1e-4)  # no answer comes back so fast
        try:
            with pytest.raises(InferenceTimeout):
                await vectors(gateway, ["too late"])
            gateway.infer_timeout = 60.0
            # the late answer to the first request is dropped; this one gets its own
            np.testing.assert_allclose(
                await vectors(gateway, ["in time"]), unary_vectors(triton, ["in time"]), atol=1e-5
            )
        finally:
            await gateway.close()

    asyncio.run(scenario())


def test_large_requests_stay_unary(triton: EmbeddedTriton) -> None:
    long_texts = ["many words " * 700] * 12  # ~90 KB: over pipe.MAX_PIPED_BYTES, under 16 rows

    async def scenario() -> int:
        gateway = await with_gateway(triton)
        try:
            await vectors(gateway, long_texts)
            return gateway.replicas[0].pipe.piped
        finally:
            await gateway.close()

    assert asyncio.run(scenario()) == 0


def test_a_stream_that_cannot_open_falls_back_to_unary_and_is_retried_later(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No server at the address: the stream breaks, the request is sent unary (and fails as
    unreachable: 503), and for REOPEN_AFTER_S requests go unary without trying a stream."""
    monkeypatch.setattr(pipe_module, "REOPEN_AFTER_S", 30.0)

    async def scenario() -> None:
        gateway = TritonGateway("127.0.0.1:1", infer_timeout=10)
        pipe = gateway.replicas[0].pipe
        try:
            for _ in range(2):
                with pytest.raises(APIError) as failed:
                    await vectors(gateway, ["nobody listens"])
                assert failed.value.status == 503
                assert pipe._reader is None  # broken, and not reopened for the second one
        finally:
            await gateway.close()

    asyncio.run(scenario())


def test_the_api_sends_small_requests_over_the_stream(api: RunningApi) -> None:
    replica = api.app.state.gateway.replicas[0]
    before = replica.pipe.piped
    with api.client() as http:
        for text in TEXTS[:3]:
            assert http.post("/api/embed", json={"texts": [text]}).status_code == 200
    assert replica.pipe.piped - before == 3

"""Parser bombs and damaged files on every route that takes documents (PUT /tika/text, /tika,
/process and POST /api/ocr), on a frontend of its own whose document sandbox has small limits:
each bomb is a 4xx (or, where the file is readable within the limits, its text), the frontend
process's peak memory stays flat while serving it, and no damaged file gets a 500."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from frontend.core.config import DocumentsSection, Settings
from frontend.triton.embedded import EmbeddedTriton
from tests.faults.conftest import own_frontend
from tests.hostile_documents import HOSTILE, corrupt_corpus
from tests.integration.fixtures import RunningApi
from tests.integration.test_embed_errors import assert_envelope

ROUTES = ["/tika/text", "/tika", "/process", "/api/ocr"]
LIMITS = DocumentsSection(workers=2, memory_mib=768, cpu_seconds=10, timeout_seconds=60)
# The frontend is this test process (uvicorn in a thread): its peak RSS may rise this much.
MAX_GROWTH = 200 * 2**20
# What each bomb gets (413: a sandbox limit; the gridSpan DOCX and the XLSX are read, their
# spans and dimensions ignored); /api/ocr reads no Office files.
EXPECTED: dict[str, tuple[set[int], str | None]] = {
    "docx-gridspan": ({200}, "spanned cell"),
    "docx-lying-zip": ({400}, None),
    "xlsx-dimension": ({200}, "last"),
    "pdf-inflating-stream": ({413}, None),
    "png-huge-header": ({400}, None),
}
CORPUS = corrupt_corpus()


@pytest.fixture(scope="module")
def hardened(settings: Settings, triton: EmbeddedTriton) -> Iterator[RunningApi]:
    with own_frontend(settings, triton, documents=LIMITS) as api:
        yield api


def _memory(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def send(client: httpx.Client, route: str, data: bytes, media: str | None) -> httpx.Response:
    if route == "/api/ocr":
        return client.post(route, json={"image": base64.b64encode(data).decode()})
    return client.put(route, content=data, headers={"Content-Type": media} if media else {})


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_parser_bomb_costs_bounded_memory_and_gets_a_clear_answer(
    hardened: RunningApi, name: str, route: str
) -> None:
    build, media = HOSTILE[name]
    data = build()
    statuses, text = EXPECTED[name]
    if route == "/api/ocr" and name.startswith(("docx", "xlsx")):
        statuses, text = {400}, None
    before = _memory("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from now
    with hardened.client() as client:
        response = send(client, route, data, media)
    grown = _memory("VmHWM") - before
    assert response.status_code in statuses, response.text
    if response.status_code == 200:
        assert text is not None and text in response.text
    else:
        error = assert_envelope(response, response.status_code, response.json()["error"]["code"])
        if response.status_code == 413:
            assert error["code"] == "DOCUMENT_TOO_COMPLEX"
            assert error["details"]["limit"].startswith("documents.")
            assert "too large or too complex" in error["message"]
    assert grown < MAX_GROWTH, f"the frontend's peak RSS rose {grown / 2**20:.0f} MiB"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("name", list(CORPUS))
def test_no_damaged_file_gets_a_500(hardened: RunningApi, name: str, route: str) -> None:
    with hardened.client() as client:
        response = send(client, route, CORPUS[name], None)
        declared = send(client, route, CORPUS[name], "application/octet-stream")
    for answer in (response, declared):
        assert answer.status_code in (200, 400, 413), (answer.status_code, answer.text[:300])
        if answer.status_code != 200:
            assert_envelope(answer, answer.status_code, answer.json()["error"]["code"])


def test_the_sandbox_still_reads_documents_after_the_bombs(hardened: RunningApi) -> None:
    from tests.pdfs import text_pdf

    with hardened.client() as client:
        response = send(client, "/tika", text_pdf([["Still reading fine"]]), "application/pdf")
    assert response.status_code == 200 and "Still reading fine" in response.text

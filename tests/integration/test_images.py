"""POST /api/caption and /api/ocr on a real Triton: input forms, order, batching, OCR accuracy."""

from __future__ import annotations

import time
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton_http
from PIL import Image

from frontend.triton.embedded import EmbeddedTriton
from tests.images import b64, encode, render_text
from tests.integration.conftest import RunningApi


def noise(size: tuple[int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


IMAGES = [noise((64, 48), 1), Image.new("RGB", (40, 90), "red"), noise((200, 120), 3)]


def caption_of(client: httpx.Client, image: Image.Image, **options: Any) -> str:
    response = client.post("/api/caption", json={"image": b64(encode(image)), **options})
    assert response.status_code == 200, response.text
    return str(response.json()["caption"])


def test_caption_single_image(client: httpx.Client) -> None:
    response = client.post("/api/caption", json={"image": b64(encode(IMAGES[0]))})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        *("request_id", "caption", "done_reason", "usage", "model_used", "processing_time_ms")
    }
    assert isinstance(body["caption"], str)
    assert body["done_reason"] in ("stop", "length")
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    assert body["model_used"] == "tiny-blip"
    assert body["request_id"] == response.headers["x-request-id"]


def test_caption_batch_keeps_input_order(client: httpx.Client) -> None:
    singles = [caption_of(client, image) for image in IMAGES]
    batch = [b64(encode(image, "JPEG"), "image/jpeg") for image in IMAGES]
    response = client.post("/api/caption", json={"batch": batch})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "caption" not in body
    # JPEG re-encoding changes pixels a little; the tiny model may then differ, so compare PNGs
    png = client.post("/api/caption", json={"batch": [b64(encode(i)) for i in IMAGES]}).json()
    assert png["captions"] == singles
    assert len(body["captions"]) == 3


def test_caption_multipart_files(client: httpx.Client) -> None:
    files = [("image", (f"{i}.png", encode(img), "image/png")) for i, img in enumerate(IMAGES)]
    several = client.post("/api/caption", files=files, data={"model": "tiny-blip"})
    assert several.status_code == 200, several.text
    assert several.json()["captions"] == [caption_of(client, image) for image in IMAGES]
    one = client.post("/api/caption", files=files[:1])
    assert one.status_code == 200, one.text
    assert one.json()["caption"] == caption_of(client, IMAGES[0])


def test_caption_generation_overrides(client: httpx.Client) -> None:
    short = caption_of(client, IMAGES[2], max_new_tokens=1)
    longer = caption_of(client, IMAGES[2], max_new_tokens=12)
    assert len(short.split()) <= len(longer.split())
    assert isinstance(caption_of(client, IMAGES[2], num_beams=2), str)


def test_concurrent_captions_are_batched(
    api: RunningApi, client: httpx.Client, triton: EmbeddedTriton
) -> None:
    caption_of(client, IMAGES[0])  # loaded
    admin = triton_http.InferenceServerClient(triton.http_url)

    def counts() -> tuple[int, int]:
        stats = admin.get_inference_statistics("tiny-blip")["model_stats"][0]
        return int(stats["inference_stats"]["success"]["count"]), int(stats["execution_count"])

    def settled(at_least: int = 0) -> tuple[int, int]:
        # Triton records a request's statistics after its response is out, so a count read
        # right after a response may still miss it: read until it reaches at_least and then
        # stays the same over a quiet interval (bounded, for a loaded machine).
        last = counts()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            time.sleep(0.5)
            now = counts()
            if now == last and now[0] >= at_least:
                break
            last = now
        return last

    requests_before, executions_before = settled()
    # one REST request with 8 images = 8 Triton requests, batched by Triton's scheduler
    batch = [b64(encode(noise((48, 48), seed))) for seed in range(8)]
    response = client.post("/api/caption", json={"batch": batch})
    assert response.status_code == 200, response.text
    requests_after, executions_after = settled(requests_before + 8)
    assert requests_after - requests_before == 8
    assert executions_after - executions_before < 8


def ocr(client: httpx.Client, image: Image.Image, fmt: str = "PNG", **options: Any) -> Any:
    data = encode(image, fmt, quality=95) if fmt == "JPEG" else encode(image, fmt)
    response = client.post("/api/ocr", json={"image": b64(data), **options})
    assert response.status_code == 200, response.text
    return response.json()


def test_ocr_reads_rendered_text_exactly(client: httpx.Client) -> None:
    body = ocr(client, render_text(["Hello Triton 2026"]))
    assert body["text"] == "Hello Triton 2026"
    assert body["model_used"] == "rapidocr"
    (line,) = body["lines"]
    assert line["text"] == "Hello Triton 2026"
    assert 0.8 < line["confidence"] <= 1.0
    assert len(line["box"]) == 4
    assert all(0 <= x <= 640 and 0 <= y <= 140 for x, y in line["box"])


def test_ocr_receipt_lines_in_reading_order(client: httpx.Client) -> None:
    receipt = render_text(["TOTAL 12.50", "CASH 20.00"], size=(420, 200))
    body = ocr(client, receipt, "JPEG")
    assert [line["text"] for line in body["lines"]] == ["TOTAL 12.50", "CASH 20.00"]
    assert body["text"] == "TOTAL 12.50\nCASH 20.00"


def test_ocr_honours_exif_orientation(client: httpx.Client) -> None:
    upright = render_text(["Hello Triton 2026"])
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # as a phone held sideways saves it
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    data = encode(stored, "JPEG", quality=95, exif=exif.tobytes())
    files = {"image": ("photo.jpg", data, "image/jpeg")}
    response = client.post("/api/ocr", files=files)
    assert response.status_code == 200, response.text
    assert response.json()["text"] == "Hello Triton 2026"


def test_ocr_batch_and_hf_ocr_model(client: httpx.Client) -> None:
    pages = [render_text(["Hello Triton 2026"]), render_text(["CASH 20.00"])]
    response = client.post("/api/ocr", json={"batch": [b64(encode(p)) for p in pages]})
    assert response.status_code == 200, response.text
    assert [page["text"] for page in response.json()["results"]] == [
        "Hello Triton 2026",
        "CASH 20.00",
    ]
    trocr = ocr(client, pages[0], model="tiny-trocr")
    assert trocr["model_used"] == "tiny-trocr"
    (line,) = trocr["lines"]
    assert 0.0 <= line["confidence"] <= 1.0
    assert line["box"] == [[0, 0], [640, 0], [640, 140], [0, 140]]


@pytest.mark.parametrize(
    "image",
    [
        Image.new("RGB", (1, 1), "white"),
        Image.new("L", (50, 30), 128),
        Image.new("RGBA", (50, 30), (0, 0, 255, 100)),
        Image.new("P", (50, 30)),
        Image.new("I;16", (50, 30)),
        Image.new("CMYK", (50, 30)),
    ],
    ids=["1x1", "grayscale", "rgba", "palette", "16-bit", "cmyk"],
)
@pytest.mark.parametrize("endpoint", ["/api/caption", "/api/ocr"])
def test_unusual_but_valid_images_are_served(
    client: httpx.Client, endpoint: str, image: Image.Image
) -> None:
    fmt = "JPEG" if image.mode == "CMYK" else "TIFF" if image.mode == "I;16" else "PNG"
    response = client.post(endpoint, json={"image": b64(encode(image, fmt))})
    assert response.status_code == 200, response.text

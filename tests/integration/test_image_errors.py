"""Every unusable image input gets the 400/413 envelope, for both endpoints, and never a crash."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from PIL import Image

from tests.images import b64, encode, png_header, render_text
from tests.integration.test_embed_errors import assert_envelope

GOOD = encode(render_text(["ok"], size=(120, 60)))


def bomb() -> bytes:
    """16 M white pixels (limit 12 M) that compress to a few kB."""
    return encode(Image.new("1", (4000, 4000), 1), optimize=True)


def ico() -> bytes:
    return encode(Image.new("RGB", (32, 32), "blue"), "ICO")


def json_body(value: Any) -> dict[str, Any]:
    return {"json": value}


def one(data: bytes) -> dict[str, Any]:
    return json_body({"image": b64(data)})


# (case id, request kwargs, status)
CASES: list[tuple[str, dict[str, Any], int]] = [
    ("not an image", one(b"hello, I am text"), 400),
    ("truncated PNG", one(GOOD[: len(GOOD) // 2]), 400),
    ("truncated JPEG", one(encode(render_text(["ok"]), "JPEG")[:600]), 400),
    ("unsupported format (ICO)", one(ico()), 400),
    ("PDF", one(b"%PDF-1.4\n1 0 obj<<>>endobj\n%%EOF"), 400),
    ("zero width", one(png_header(0, 10)), 400),
    ("absurd width", one(png_header(100_000, 10)), 400),
    ("decompression bomb", one(bomb()), 400),
    ("empty image", one(b""), 400),
    ("invalid base64", json_body({"image": "!!!not-base64***"}), 400),
    ("image not a string", json_body({"image": 42}), 400),
    ("image and batch", json_body({"image": b64(GOOD), "batch": [b64(GOOD)]}), 400),
    ("neither image nor batch", json_body({"model": "x"}), 400),
    ("batch empty", json_body({"batch": []}), 400),
    ("batch not a list", json_body({"batch": b64(GOOD)}), 400),
    ("bad image inside batch", json_body({"batch": [b64(GOOD), b64(b"junk")]}), 400),
    ("too many images", json_body({"batch": [b64(GOOD)] * 9}), 400),
    ("unknown field", json_body({"image": b64(GOOD), "colour": "blue"}), 400),
    ("JSON array body", json_body([b64(GOOD)]), 400),
    (
        "malformed JSON",
        {"content": b'{"image": "abc', "headers": {"content-type": "application/json"}},
        400,
    ),
    ("text/plain body", {"content": b"hello", "headers": {"content-type": "text/plain"}}, 400),
    ("multipart without image", {"files": {"other": ("a.png", GOOD, "image/png")}}, 400),
    ("multipart image as text", {"files": {"x": ("a.png", GOOD)}, "data": {"image": "abc"}}, 400),
    ("multipart too many files", {"files": [("image", ("a.png", GOOD))] * 9}, 400),
    ("body over the limit", one(b"\0" * (3 * 1024 * 1024 + 1)), 413),
]


@pytest.mark.parametrize(("request_", "status"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("endpoint", ["/api/caption", "/api/ocr"])
def test_bad_images_get_the_envelope(
    client: httpx.Client, endpoint: str, request_: dict[str, Any], status: int
) -> None:
    error = assert_envelope(client.post(endpoint, **request_), status, "INVALID_REQUEST")
    assert "Traceback" not in error["message"]


@pytest.mark.parametrize("endpoint", ["/api/caption", "/api/ocr"])
def test_models_still_answer_after_bad_input(client: httpx.Client, endpoint: str) -> None:
    for _, request_, _status in CASES[:8]:
        client.post(endpoint, **request_)
    response = client.post(endpoint, json={"image": b64(GOOD)})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("options", "status", "code"),
    [
        ({"max_new_tokens": 17}, 400, "INVALID_REQUEST"),
        ({"max_new_tokens": 0}, 400, "INVALID_REQUEST"),
        ({"max_new_tokens": "many"}, 400, "INVALID_REQUEST"),
        ({"num_beams": 4}, 400, "INVALID_REQUEST"),
        ({"model": "nope"}, 404, "MODEL_NOT_FOUND"),
        ({"model": "rapidocr"}, 404, "MODEL_NOT_FOUND"),  # an OCR model is not a caption model
    ],
)
def test_caption_options_are_checked(
    client: httpx.Client, options: dict[str, Any], status: int, code: str
) -> None:
    response = client.post("/api/caption", json={"image": b64(GOOD), **options})
    assert_envelope(response, status, code)


def test_multipart_options_are_checked(client: httpx.Client) -> None:
    files = {"image": ("a.png", GOOD, "image/png")}
    response = client.post("/api/caption", files=files, data={"max_new_tokens": "lots"})
    assert_envelope(response, 400, "INVALID_REQUEST")
    assert "max_new_tokens" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [(png_header(100_000, 10), "largest side"), (bomb(), "pixels; the limit is")],
    ids=["absurd width", "decompression bomb"],
)
def test_size_refusals_name_the_limit(client: httpx.Client, data: bytes, fragment: str) -> None:
    response = client.post("/api/ocr", json={"image": b64(data)})
    error = assert_envelope(response, 400, "INVALID_REQUEST")
    assert fragment in error["message"]
    assert error["details"] == {"image_index": 0}

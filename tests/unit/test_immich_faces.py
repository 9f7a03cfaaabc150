"""Face geometry (SCRFD decoding, NMS, ArcFace alignment) on synthetic outputs, Immich's entries
and file fields, and how a keyless Immich server is let in (or not)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from frontend.app import create_app
from frontend.compat.immich import ImmichError, field_bytes, parse_entries
from frontend.core.config import load_settings
from frontend.core.security import hash_key
from frontend.tasks.image_embedding_faces import (
    ARCFACE_TEMPLATE,
    STRIDES,
    align,
    anchor_centers,
    decode,
    nms,
    similarity_transform,
)

KEY = "hlai_immich-test-key-0123456789"


def heads(size: int = 640) -> list[np.ndarray]:
    """SCRFD's nine outputs, all scores 0 except anchor 1 of cell (row 2, col 3) at stride 16."""
    scores, boxes, points = [], [], []
    for stride in STRIDES:
        count = (size // stride) ** 2 * 2
        scores.append(np.zeros((count, 1), np.float32))
        boxes.append(np.ones((count, 4), np.float32))
        points.append(np.zeros((count, 10), np.float32))
    row = (2 * (640 // 16) + 3) * 2 + 1
    scores[1][row] = 0.9
    boxes[1][row] = [0.5, 1.0, 2.0, 3.0]
    points[1][row] = np.arange(10) / 10
    return [*scores, *boxes, *points]


def test_decode_finds_the_anchor_and_scales_by_its_stride() -> None:
    boxes, scores, points = decode(heads(), threshold=0.5)
    assert scores.tolist() == pytest.approx([0.9])
    # cell (2, 3) at stride 16: anchor corner (48, 32); distances x 16
    assert boxes.tolist() == [[48 - 8, 32 - 16, 48 + 32, 32 + 48]]
    expected = np.array([[48, 32]] * 5, np.float32) + (np.arange(10) / 10 * 16).reshape(5, 2)
    np.testing.assert_allclose(points[0], expected, rtol=1e-6)


def test_decode_reads_batched_exports_too() -> None:
    batched = [head[None] for head in heads()]
    assert decode(batched, 0.5)[1].tolist() == pytest.approx([0.9])


def test_anchor_centers_are_cell_corners_two_per_cell() -> None:
    centers = anchor_centers(64, 32)
    assert centers.tolist() == [
        [0, 0],
        [0, 0],
        [32, 0],
        [32, 0],
        [0, 32],
        [0, 32],
        [32, 32],
        [32, 32],
    ]


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    keep = nms(boxes, np.array([0.8, 0.9, 0.7], np.float32))
    assert keep.tolist() == [1, 2]


def test_similarity_transform_recovers_a_known_one() -> None:
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -4.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    source = (ARCFACE_TEMPLATE - shift) @ np.linalg.inv(scale * rotation).T
    matrix = similarity_transform(source, ARCFACE_TEMPLATE)
    np.testing.assert_allclose(matrix[:, :2], scale * rotation, atol=1e-6)
    np.testing.assert_allclose(source @ matrix[:, :2].T + matrix[:, 2], ARCFACE_TEMPLATE, atol=1e-4)


def test_align_puts_the_landmarks_on_the_template() -> None:
    image = np.zeros((200, 200, 3), np.uint8)
    landmarks = ARCFACE_TEMPLATE * 1.5 + 20  # the face at 1.5x, shifted
    for x, y in landmarks.astype(int):
        image[y - 1 : y + 2, x - 1 : x + 2] = 255
    crop = align(image, landmarks)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    for x, y in ARCFACE_TEMPLATE.round().astype(int):
        assert crop[y, x].max() > 100


@pytest.mark.parametrize(
    "text",
    [
        *("", "[]", "{}", "{bad", '{"clip": []}', '{"clip": {"visual": {"modelName": 3}}}'),
        '{"clip": {"image": {"modelName": "x"}}}',
        '{"clip": {"visual": {"modelName": "x", "options": 1}}}',
        '{"nsfw": {"visual": {"modelName": "x"}}}',
    ],
)
def test_bad_entries_are_422(text: str) -> None:
    with pytest.raises(ImmichError) as caught:
        parse_entries(text)
    assert caught.value.status == 422


def test_entries_as_immich_sends_them_parse() -> None:
    entries = parse_entries(
        '{"clip":{"textual":{"modelName":"ViT-B-32__openai","options":{"language":"de"}}}}'
    )
    assert entries["clip"]["textual"]["modelName"] == "ViT-B-32__openai"


@pytest.mark.parametrize(
    "data", [b"\xff\xd8\xff\xe0JFIF\x00\x01", b"\x89PNG\r\n\x1a\n\x00\x00", b"GIF89a"]
)
def test_a_file_sent_without_a_filename_keeps_its_bytes(data: bytes) -> None:
    try:
        as_text = data.decode("utf-8")  # what Starlette does first...
    except UnicodeDecodeError:
        as_text = data.decode("latin-1")  # ...and then
    assert field_bytes(as_text) == data


def app_with(tmp_path: Any, address: str, **security: Any) -> TestClient:
    keys = [{"key_hash": hash_key(KEY), "name": "app"}]
    settings = load_settings(None, data_dir=tmp_path, security={"api_keys": keys, **security})
    app = create_app(settings)
    return TestClient(app, base_url="http://localhost", client=(address, 40000))


def test_with_api_keys_an_immich_server_gets_ping_but_not_predict(tmp_path: Any) -> None:
    client = app_with(tmp_path, "192.168.1.20")
    assert client.get("/ping").text == "pong"  # a probe: no key, no data
    response = client.post("/predict", data={"entries": "{}", "text": "a dog"})
    assert response.status_code == 401
    keyed = client.post(
        "/predict",
        data={"entries": "{bad", "text": "a dog"},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert keyed.status_code == 422  # past the security check: Immich's own answer


@pytest.mark.parametrize(("address", "status"), [("127.0.0.1", 422), ("192.168.1.20", 401)])
def test_allow_localhost_unauthenticated_lets_in_only_loopback(
    tmp_path: Any, address: str, status: int
) -> None:
    client = app_with(tmp_path, address, allow_localhost_unauthenticated=True)
    response = client.post("/predict", data={"entries": "{bad", "text": "x"})
    assert response.status_code == status

"""Image embedding on the real Triton, through Immich's machine-learning API (POST /predict):
CLIP vectors equal to an in-process reference from the same files, faces, OCR, hostile input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from PIL import Image
from tokenizers import Tokenizer

from frontend.models.cache import snapshot_path
from frontend.triton.embedded import EmbeddedTriton
from tests.images import b64, encode, png_header, render_text
from tests.integration.fixtures import RunningApi, triton_log_count
from tools.build_test_models import TINY_BUFFALO, TINY_CLIP, TINY_CLIP_IMMICH, build_test_models

MODELS = {
    "tiny-clip": TINY_CLIP,
    "tiny-clip-immich": TINY_CLIP_IMMICH,
    "tiny-buffalo": TINY_BUFFALO,
}
CLIP_VISUAL = {"clip": {"visual": {"modelName": "tiny-clip-immich"}}}
CLIP_TEXTUAL = {
    "clip": {"textual": {"modelName": "tiny-clip-immich", "options": {"language": "en"}}}
}
FACES = {
    "facial-recognition": {
        "detection": {"modelName": "tiny-buffalo", "options": {"minScore": 0.7}},
        "recognition": {"modelName": "tiny-buffalo"},
    }
}
OCR = {
    "ocr": {
        "detection": {
            "modelName": "PP-OCRv5_mobile",
            "options": {"minScore": 0.5, "maxResolution": 736},
        },
        "recognition": {"modelName": "PP-OCRv5_mobile", "options": {"minScore": 0.5}},
    }
}


@pytest.fixture(scope="module")
def immich_models(api: RunningApi, data_dir: Path) -> dict[str, Path]:
    """The tiny CLIP (both layouts) and buffalo-shaped face graphs, added at runtime."""
    hub = data_dir / "models" / "hub"
    snapshots = {}
    with api.client() as client:
        for (model_id, hf_model), group in zip(
            MODELS.items(), ("clip", "clip-immich", "faces"), strict=True
        ):
            build_test_models(data_dir, group)
            added = client.post(
                "/api/models",
                json={"task": "image_embedding", "hf_model": hf_model, "id": model_id},
            )
            assert added.status_code in (200, 201, 409), added.text
            snapshot = snapshot_path(hub, hf_model)
            assert snapshot is not None
            snapshots[model_id] = snapshot
    return snapshots


def predict(client: httpx.Client, entries: Any, image: bytes | None = None, text: str | None = None,
            filename: str | None = "blob") -> httpx.Response:  # fmt: skip
    data = {"entries": entries if isinstance(entries, str) else json.dumps(entries)}
    if text is not None:
        data["text"] = text
    files = {"image": (filename, image)} if image is not None else None
    return client.post("/predict", data=data, files=files)


def photo(seed: int, size: tuple[int, int] = (70, 50)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels))


def immich_visual_reference(snapshot: Path, data: bytes) -> np.ndarray:
    """Immich's OpenClipVisualEncoder, step by step: shortest side to the size, center crop,
    /255, (x - mean) / std, CHW, the ONNX graph."""
    config = json.loads((snapshot / "visual" / "preprocess_cfg.json").read_text())
    size = config["size"][0]
    image = Image.open(__import__("io").BytesIO(data)).convert("RGB")
    if image.width < image.height:
        image = image.resize(
            (size, int(image.height / image.width * size)), Image.Resampling.BICUBIC
        )
    else:
        image = image.resize(
            (int(image.width / image.height * size), size), Image.Resampling.BICUBIC
        )
    left, upper = int(image.size[0] / 2 - size / 2), int(image.size[1] / 2 - size / 2)
    image = image.crop((left, upper, left + size, upper + size))
    pixels = np.asarray(image, dtype=np.float32) / 255.0
    mean, std = np.array(config["mean"], np.float32), np.array(config["std"], np.float32)
    pixels = ((pixels - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
    session = ort.InferenceSession(str(snapshot / "visual" / "model.onnx"))
    return np.asarray(session.run(None, {"image": pixels})[0][0])


def immich_textual_reference(snapshot: Path, text: str) -> np.ndarray:
    config = json.loads((snapshot / "config.json").read_text())
    context = config["text_cfg"]["context_length"]
    tokenizer = Tokenizer.from_file(str(snapshot / "textual" / "tokenizer.json"))
    tokenizer.enable_padding(
        length=context, pad_token="<pad>", pad_id=tokenizer.token_to_id("<pad>")
    )
    tokenizer.enable_truncation(max_length=context)
    ids = np.array([tokenizer.encode(" ".join(text.split())).ids], dtype=np.int32)
    session = ort.InferenceSession(str(snapshot / "textual" / "model.onnx"))
    return np.asarray(session.run(None, {"text": ids})[0][0])


def vector(answer: dict[str, Any]) -> np.ndarray:
    assert isinstance(answer["clip"], str)  # Immich's vectors travel as JSON text
    return np.array(json.loads(answer["clip"]), dtype=np.float32)


def test_ping_answers_pong(client: httpx.Client) -> None:
    response = client.get("/ping")
    assert response.status_code == 200 and response.text == "pong"


@pytest.mark.parametrize("filename", ["blob", None])
def test_clip_visual_equals_immichs_own_preprocessing(
    client: httpx.Client, immich_models: dict[str, Path], filename: str | None
) -> None:
    data = photo(1)
    response = predict(client, CLIP_VISUAL, image=data, filename=filename)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"clip", "imageHeight", "imageWidth"}
    assert (answer["imageHeight"], answer["imageWidth"]) == (50, 70)
    expected = immich_visual_reference(immich_models["tiny-clip-immich"], data)
    np.testing.assert_allclose(vector(answer), expected, atol=1e-5)


def test_clip_textual_equals_the_onnx_graph_on_immichs_tokens(
    client: httpx.Client, immich_models: dict[str, Path]
) -> None:
    text = "a  photo of a dog on the beach"
    response = predict(client, CLIP_TEXTUAL, text=text)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"clip"}
    expected = immich_textual_reference(immich_models["tiny-clip-immich"], text)
    np.testing.assert_allclose(vector(response.json()), expected, atol=1e-5)


def test_a_transformers_checkpoint_matches_transformers_in_process(
    client: httpx.Client, immich_models: dict[str, Path], triton: EmbeddedTriton
) -> None:
    """Served torch-free on a CPU: both towers on ONNX Runtime, checked against torch first."""
    import torch
    from transformers import AutoModel, AutoProcessor

    snapshot = immich_models["tiny-clip"]
    model, processor = (
        AutoModel.from_pretrained(snapshot).eval(),
        AutoProcessor.from_pretrained(snapshot),
    )
    data, text = photo(2), "red car in the city at night"
    with torch.no_grad():
        image = processor(
            images=[Image.open(__import__("io").BytesIO(data)).convert("RGB")], return_tensors="pt"
        )
        image_vector = model.get_image_features(**image).pooler_output[0].numpy()
        tokens = processor.tokenizer([text], padding=True, return_tensors="pt")
        text_vector = model.get_text_features(**tokens).pooler_output[0].numpy()
    visual = predict(client, {"clip": {"visual": {"modelName": "tiny-clip"}}}, image=data)
    textual = predict(client, {"clip": {"textual": {"modelName": TINY_CLIP}}}, text=text)
    assert visual.status_code == textual.status_code == 200, visual.text + textual.text
    np.testing.assert_allclose(
        vector(visual.json()), image_vector / np.linalg.norm(image_vector), atol=1e-5
    )
    np.testing.assert_allclose(
        vector(textual.json()), text_vector / np.linalg.norm(text_vector), atol=1e-5
    )
    for got, expected in ((visual, image_vector), (textual, text_vector)):
        cosine = float(vector(got.json()) @ expected / np.linalg.norm(expected))
        assert cosine >= 0.9999
    # the ONNX Runtime engine served it (the stub logs its engine when the model loads)
    assert triton_log_count(triton, f"tiny-clip: {TINY_CLIP} on cpu (onnx)") >= 1
    assert triton_log_count(triton, f"tiny-clip: {TINY_CLIP} on cpu (torch)") == 0
    # both layouts of the same weights: one space
    same = predict(client, CLIP_VISUAL, image=data)
    assert float(vector(same.json()) @ vector(visual.json())) > 0.999


def face_photo() -> bytes:
    """1280 x 960, black, one white 64 px square at (448, 320): the test detector's face."""
    pixels = np.zeros((960, 1280, 3), dtype=np.uint8)
    pixels[320:384, 448:512] = 255
    return encode(Image.fromarray(pixels))


def test_faces_are_found_where_they_are_in_immichs_shape(
    client: httpx.Client, immich_models: dict[str, Path]
) -> None:
    response = predict(client, FACES, image=face_photo())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"facial-recognition", "imageHeight", "imageWidth"}
    assert (answer["imageHeight"], answer["imageWidth"]) == (960, 1280)
    [face] = answer["facial-recognition"]
    assert set(face) == {"boundingBox", "embedding", "score"}
    assert face["boundingBox"] == {"x1": 448, "y1": 320, "x2": 512, "y2": 384}
    assert face["score"] > 0.99
    embedding = np.array(json.loads(face["embedding"]))
    assert embedding.shape == (512,) and abs(np.linalg.norm(embedding) - 1) < 1e-4
    # above every score: no face
    strict = json.loads(json.dumps(FACES))
    strict["facial-recognition"]["detection"]["options"]["minScore"] = 1.0
    assert predict(client, strict, image=face_photo()).json()["facial-recognition"] == []


def test_ocr_answers_in_immichs_columns(
    client: httpx.Client, immich_models: dict[str, Path]
) -> None:
    data = encode(render_text(["Hello Triton 2026"]))
    response = predict(client, OCR, image=data)
    assert response.status_code == 200, response.text
    answer = response.json()
    ocr = answer["ocr"]
    assert set(ocr) == {"text", "box", "boxScore", "textScore"}
    assert "Hello" in " ".join(ocr["text"])
    assert len(ocr["box"]) == 8 * len(ocr["text"]) == 8 * len(ocr["textScore"])
    assert all(-0.01 <= value <= 1.01 for value in ocr["box"])
    assert (answer["imageHeight"], answer["imageWidth"]) == (140, 640)


@pytest.mark.parametrize(
    ("entries", "image", "text", "status"),
    [
        ("{not json", b"", None, 422),
        ({"nsfw": {"visual": {"modelName": "x"}}}, None, "hi", 422),
        ({"clip": {"visual": {}}}, None, "hi", 422),
        ({"clip": {"visual": {"modelName": "no-such-model"}}}, None, "hi", 422),
        (CLIP_VISUAL, None, None, 400),
        (CLIP_VISUAL, b"not an image at all", None, 400),
        (CLIP_VISUAL, png_header(30_000, 30_000), None, 400),
        (CLIP_VISUAL, None, "text for an image model", 400),
        (FACES, None, "faces need an image", 400),
    ],
)
def test_hostile_input_gets_immichs_status(
    client: httpx.Client, immich_models: dict[str, Path], entries: Any, image: bytes | None,
    text: str | None, status: int,
) -> None:  # fmt: skip
    response = predict(client, entries, image=image or None, text=text)
    assert response.status_code == status, response.text
    assert isinstance(response.json()["detail"], str)


def test_an_unknown_model_names_what_is_available(
    client: httpx.Client, immich_models: dict[str, Path]
) -> None:
    response = predict(client, {"clip": {"textual": {"modelName": "ViT-H-14__nope"}}}, text="a dog")
    assert response.status_code == 422
    assert "tiny-clip-immich" in response.json()["detail"]


def test_api_embed_puts_texts_and_images_in_the_predict_space(
    client: httpx.Client, immich_models: dict[str, Path]
) -> None:
    data, text = photo(3), "a dog in the snow"
    body = {"model": "tiny-clip-immich", "texts": [text], "images": [b64(data, "image/png")]}
    response = client.post("/api/embed", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["model_used"] == "tiny-clip-immich" and answer["dimensions"] == 16
    text_vector, image_vector = (np.array(v) for v in answer["embeddings"])
    visual = vector(predict(client, CLIP_VISUAL, image=data).json())
    textual = vector(predict(client, CLIP_TEXTUAL, text=text).json())
    np.testing.assert_allclose(image_vector, visual, atol=1e-6)
    np.testing.assert_allclose(text_vector, textual, atol=1e-6)
    # texts alone, naming the image model, take its text tower
    alone = client.post("/api/embed", json={"model": "tiny-clip-immich", "texts": [text]})
    np.testing.assert_allclose(alone.json()["embeddings"][0], textual, atol=1e-6)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"model": "tiny-clip-immich", "images": ["not base64!"]}, "base64"),
        ({"model": "tiny-clip-immich", "images": [b64(b"junk")]}, "image 0"),
        ({"model": "tiny-buffalo", "images": [b64(b"junk")]}, "face model"),
    ],
)
def test_api_embed_refuses_bad_images(
    client: httpx.Client, immich_models: dict[str, Path], body: dict[str, Any], fragment: str
) -> None:
    response = client.post("/api/embed", json=body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]["message"]

"""Triton Python-backend entry point shared by every image-embedding model."""

import json

import numpy as np
import triton_python_backend_utils as pb_utils

from frontend.tasks.common import images_of, load_task, run_batch
from frontend.tasks.image_embedding import ImageEmbeddingTask

DEFAULT_MIN_SCORE = 0.7  # Immich's default face detection threshold


class TritonPythonModel:
    def initialize(self, args):
        detail = " ({task.engine}), {task.dimensions} dims"
        self.task = load_task(ImageEmbeddingTask, args, detail=detail)

    def execute(self, requests):
        # One forward per kind of request in the batch: its images, its texts (faces: per
        # detection threshold).
        return run_batch(
            requests,
            read=_items,
            infer=self._infer,
            write=self._tensors,
            group_key=self._key,
            name="image embedding",
        )

    def _key(self, request):
        image = pb_utils.get_input_tensor_by_name(request, "IMAGE")
        kind = "image" if image is not None else "text"
        if self.task.faces is None:
            return kind
        if kind == "text":
            raise ValueError("a face model takes IMAGE only")
        return _min_score(request)

    def _infer(self, items, key):
        if self.task.faces is not None:
            return self.task.faces.faces(items, key)
        if key == "image":
            return self.task.embed_images(items)
        return self.task.embed_texts(items)

    def _tensors(self, results):
        if self.task.faces is None:
            return [pb_utils.Tensor("EMBEDDING", np.ascontiguousarray(results, np.float32))]
        documents = [[json.dumps(_faces_json(faces)).encode()] for faces in results]
        return [pb_utils.Tensor("FACES", np.array(documents, dtype=np.object_))]


def _items(request):
    image = pb_utils.get_input_tensor_by_name(request, "IMAGE")
    text = pb_utils.get_input_tensor_by_name(request, "TEXT")
    if (image is None) == (text is None):
        raise ValueError("send IMAGE or TEXT (one of them)")
    if image is not None:
        return images_of(image.as_numpy())
    try:
        return [item.decode("utf-8") for item in text.as_numpy().reshape(-1)]
    except (AttributeError, UnicodeDecodeError):
        raise ValueError("TEXT must be a tensor of UTF-8 strings") from None


def _min_score(request):
    value = json.loads(request.parameters() or "{}").get("min_score", DEFAULT_MIN_SCORE)
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise ValueError("parameter min_score must be a number") from None
    if not 0.0 <= score <= 1.0:
        raise ValueError("parameter min_score must be from 0 to 1")
    return score


def _faces_json(faces):
    return [{**face, "embedding": face["embedding"].tolist()} for face in faces]

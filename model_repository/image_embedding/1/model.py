"""Triton Python-backend entry point shared by every image-embedding model."""

from frontend.tasks.common import load_task, run_batch
from frontend.tasks.image_embedding import ImageEmbeddingTask
from frontend.tasks.triton_io import (
    image_embedding_key,
    image_embedding_tensors,
    image_or_text_items,
)


class TritonPythonModel:
    def initialize(self, args):
        detail = " ({task.engine}), {task.dimensions} dims"
        self.task = load_task(ImageEmbeddingTask, args, detail=detail)

    def execute(self, requests):
        # One forward per kind of request in the batch: its images, its texts (faces: per
        # detection threshold).
        faces = self.task.faces is not None
        return run_batch(
            requests,
            read=image_or_text_items,
            infer=self._infer,
            write=lambda results: image_embedding_tensors(results, faces),
            group_key=lambda request: image_embedding_key(request, faces),
            name="image embedding",
        )

    def _infer(self, items, key):
        if self.task.faces is not None:
            return self.task.faces.faces(items, key)
        if key == "image":
            return self.task.embed_images(items)
        return self.task.embed_texts(items)

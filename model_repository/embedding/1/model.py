"""Triton Python-backend entry point shared by every text-embedding model."""

import triton_python_backend_utils as pb_utils

from frontend.tasks.common import model_parameters, torch_device
from frontend.tasks.embedding import EmbeddingTask


class TritonPythonModel:
    def initialize(self, args):
        params = model_parameters(args)
        device = torch_device(args["model_instance_kind"], args["model_instance_device_id"])
        self.task = EmbeddingTask(
            params["hf_model"],
            threads=int(params.get("threads", "1")),
            device=device,
            fp16=params.get("fp16", "false") == "true",
            engine=params.get("engine", "auto"),
        )
        pb_utils.Logger.log_info(
            f"{args['model_name']}: {params['hf_model']} on {device} "
            f"({self.task.engine}, {self.task.precision}), "
            f"{self.task.dimensions} dims"
        )

    def execute(self, requests):
        # Decode each request on its own so one bad request fails only itself.
        texts_per_request, errors = [], {}
        for index, request in enumerate(requests):
            try:
                array = pb_utils.get_input_tensor_by_name(request, "TEXT").as_numpy()
                texts = [item.decode("utf-8") for item in array.reshape(-1)]
            except (AttributeError, UnicodeDecodeError):
                errors[index] = pb_utils.TritonError("TEXT must be a tensor of UTF-8 strings")
                texts = []
            texts_per_request.append(texts)
        try:
            vectors = self.task.embed([t for texts in texts_per_request for t in texts])
        except Exception as exc:  # fail this batch, keep the model serving
            pb_utils.Logger.log_error(f"embedding failed: {type(exc).__name__}: {exc}")
            error = pb_utils.TritonError("embedding failed")
            return [pb_utils.InferenceResponse(error=error) for _ in requests]
        responses, offset = [], 0
        for index, texts in enumerate(texts_per_request):
            if index in errors:
                responses.append(pb_utils.InferenceResponse(error=errors[index]))
                continue
            chunk = vectors[offset : offset + len(texts)]
            offset += len(texts)
            tensor = pb_utils.Tensor("EMBEDDING", chunk)
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
        return responses

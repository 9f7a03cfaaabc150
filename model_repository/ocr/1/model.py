"""Triton Python-backend entry point shared by every OCR model (RapidOCR or Hugging Face)."""

import json

import numpy as np
import triton_python_backend_utils as pb_utils

from frontend.tasks.common import images_of, model_parameters, torch_device
from frontend.tasks.ocr import load_ocr_engine


class TritonPythonModel:
    def initialize(self, args):
        params = model_parameters(args)
        device = torch_device(args["model_instance_kind"], args["model_instance_device_id"])
        self.engine = load_ocr_engine(
            params["hf_model"],
            threads=int(params.get("threads", "1")),
            device=device,
            max_new_tokens=int(params.get("max_new_tokens", "64")),
        )
        pb_utils.Logger.log_info(f"{args['model_name']}: {params['hf_model']} on {device}")

    def execute(self, requests):
        images, errors = {}, {}
        for index, request in enumerate(requests):
            try:
                array = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
                images[index] = images_of(array)
            except (AttributeError, ValueError) as exc:
                errors[index] = pb_utils.TritonError(str(exc))
        batch = [image for index in sorted(images) for image in images[index]]
        try:
            results = self.engine.read(batch)
        except Exception as exc:  # fail this batch, keep the model serving
            pb_utils.Logger.log_error(f"ocr failed: {type(exc).__name__}: {exc}")
            error = pb_utils.TritonError("ocr failed")
            return [pb_utils.InferenceResponse(error=error) for _ in requests]
        responses, offset = [], 0
        for index in range(len(requests)):
            if index in errors:
                responses.append(pb_utils.InferenceResponse(error=errors[index]))
                continue
            mine = results[offset : offset + len(images[index])]
            offset += len(images[index])
            data = np.array([[json.dumps(r.to_dict()).encode()] for r in mine], dtype=np.object_)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("RESULT", data)]))
        return responses

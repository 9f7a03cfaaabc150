"""Triton Python-backend entry point shared by every image-caption model."""

import numpy as np
import triton_python_backend_utils as pb_utils

from frontend.tasks.caption import CaptionTask
from frontend.tasks.common import images_of, model_parameters, request_settings, torch_device

# Upper bounds a request may ask for; the frontend applies the configured (lower) limits.
BOUNDS = {"max_new_tokens": 1024, "num_beams": 16}


class TritonPythonModel:
    def initialize(self, args):
        params = model_parameters(args)
        device = torch_device(args["model_instance_kind"], args["model_instance_device_id"])
        self.task = CaptionTask(
            params["hf_model"],
            threads=int(params.get("threads", "1")),
            device=device,
            fp16=params.get("fp16", "false") == "true",
            max_new_tokens=int(params.get("max_new_tokens", "30")),
            num_beams=int(params.get("num_beams", "1")),
        )
        pb_utils.Logger.log_info(
            f"{args['model_name']}: {params['hf_model']} on {device} ({self.task.precision})"
        )

    def execute(self, requests):
        # Validate each request on its own; then one generate per distinct generation setting
        # (normally one for the whole batch).
        images, errors, groups = {}, {}, {}
        for index, request in enumerate(requests):
            try:
                array = pb_utils.get_input_tensor_by_name(request, "IMAGE").as_numpy()
                images[index] = images_of(array)
                settings = request_settings(request.parameters(), BOUNDS)
            except (AttributeError, ValueError) as exc:
                errors[index] = pb_utils.TritonError(str(exc))
                continue
            key = (settings.get("max_new_tokens"), settings.get("num_beams"))
            groups.setdefault(key, []).append(index)
        captions = {}
        for (max_new_tokens, num_beams), members in groups.items():
            batch = [image for index in members for image in images[index]]
            try:
                texts = self.task.caption(batch, max_new_tokens, num_beams)
            except Exception as exc:  # fail these requests, keep the model serving
                pb_utils.Logger.log_error(f"caption failed: {type(exc).__name__}: {exc}")
                for index in members:
                    errors[index] = pb_utils.TritonError("caption failed")
                continue
            offset = 0
            for index in members:
                captions[index] = texts[offset : offset + len(images[index])]
                offset += len(images[index])
        responses = []
        for index in range(len(requests)):
            if index in errors:
                responses.append(pb_utils.InferenceResponse(error=errors[index]))
                continue
            data = np.array([[c.encode("utf-8")] for c in captions[index]], dtype=np.object_)
            tensor = pb_utils.Tensor("CAPTION", data)
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
        return responses

"""Helpers shared by every task model: typed parameters, one batch loop, offline snapshots."""

from __future__ import annotations

import contextlib
import importlib
import inspect
import json
import os
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
# Triton config parameters a task constructor may take, and how each is read from its string.
PARAMETER_TYPES: dict[str, Callable[[str], Any]] = {
    "threads": int,
    "fp16": lambda value: value == "true",
    "engine": str,
    "max_new_tokens": int,
    "num_beams": int,
    "use_cls": lambda value: value == "true",
    "rec_batch_num": int,
    "lang": str,  # OCR (Tesseract): the model's default language, "deu"
    "bf16": lambda value: value == "true",
    "quantize": str,  # caption on a GPU: "8bit" or "4bit" weights (bitsandbytes), else "none"
}


class ModelNotDownloaded(RuntimeError):
    """The weights are not in the local cache; loading never reaches for the network."""


def local_snapshot(hf_model: str) -> Path:
    """Path of the cached snapshot, found without any network access or hub retries."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    hub = hub_cache_dir()
    try:
        return Path(snapshot_download(hf_model, cache_dir=hub, local_files_only=True))
    except LocalEntryNotFoundError:
        raise ModelNotDownloaded(
            f"model {hf_model} is not in the cache under {hub}; download or import it first"
        ) from None


def hub_cache_dir() -> Path:
    """The hub cache as the environment says now (huggingface_hub freezes it at import)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    return Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser() / "hub"


def configure_threads(threads: int) -> None:
    """Pin torch's intra-op threads: spin-waiting threads collapse throughput on shared CPUs."""
    import torch

    torch.set_num_threads(max(1, threads))
    with contextlib.suppress(RuntimeError):  # already set in this process
        torch.set_num_interop_threads(1)


def torch_device(instance_kind: str, device_id: str | int) -> str:
    """The torch device for a Triton instance: its GPU for KIND_GPU, else the CPU."""
    if instance_kind.upper().endswith("GPU"):
        return f"cuda:{int(device_id)}"
    return "cpu"


# OCR engines whose models come with a package, not from Hugging Face: "rapidocr/PP-OCRv4"
# (ONNX weights inside rapidocr-onnxruntime), "tesseract/5" (Debian's traineddata files).
BUILTIN_ENGINES = ("rapidocr", "tesseract")


def builtin_engine(hf_model: str) -> str | None:
    """ "rapidocr" or "tesseract" for a built-in engine's id ("tesseract/5"), else None."""
    engine, slash, _ = hf_model.lower().partition("/")
    return engine if slash and engine in BUILTIN_ENGINES else None


def is_builtin(hf_model: str) -> bool:
    """Engines whose weights ship inside a package (no Hugging Face download)."""
    return builtin_engine(hf_model) is not None


def model_parameters(args: dict[str, Any]) -> dict[str, str]:
    """The string parameters of a Triton model config, from initialize()'s args."""
    config = json.loads(args["model_config"])
    return {k: v["string_value"] for k, v in config.get("parameters", {}).items()}


def images_of(array: np.ndarray) -> list[np.ndarray]:
    """A request's IMAGE tensor, [n, H, W, 3] uint8, as n images; ValueError if malformed."""
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3 or 0 in array.shape:
        raise ValueError(f"IMAGE must be uint8 [n, H, W, 3], got {array.dtype} {array.shape}")
    return list(array)


def request_settings(parameters_json: str, allowed: dict[str, int]) -> dict[str, int]:
    """Integer request parameters named in `allowed` (name -> upper bound); ValueError if bad."""
    parameters = json.loads(parameters_json or "{}")
    settings = {}
    for name, bound in allowed.items():
        if name in parameters:
            value = parameters[name]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= bound:
                raise ValueError(f"parameter {name} must be an integer from 1 to {bound}")
            settings[name] = value
    return settings


def image_only_processor(processor_class: Any) -> Any:
    """`processor_class` (Qwen2-VL's, SmolVLM2's: image, video and text) without its video
    part: with no torchvision, transformers has no video processor class and refuses to build
    one even as None. Named like its parent, so what it saves loads with AutoProcessor."""

    def __init__(
        self: Any,
        image_processor: Any = None,
        tokenizer: Any = None,
        chat_template: str | None = None,  # named: from_pretrained passes only what is named
        **kwargs: Any,
    ) -> None:
        # ProcessorMixin zips its positional sub-processors with this signature's: the video
        # processor the parent passes on is dropped.
        processor_class.__init__(
            self,
            image_processor=image_processor,
            tokenizer=tokenizer,
            video_processor=None,
            chat_template=chat_template,
            **kwargs,
        )

    namespace = {"__init__": __init__, "__module__": processor_class.__module__}
    return type(processor_class.__name__, (processor_class,), namespace)


def auto_processor(snapshot: Path) -> Any:
    """AutoProcessor for a checkpoint; for one whose processor also takes videos, when loading
    it fails for want of torchvision, its image-and-text part (all a caption request sends)."""
    import transformers

    try:
        return transformers.AutoProcessor.from_pretrained(snapshot, local_files_only=True)
    except (OSError, ValueError, ImportError):
        recorded = None
        for name in ("processor_config.json", "preprocessor_config.json"):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                recorded = recorded or json.loads((snapshot / name).read_text()).get(
                    "processor_class"
                )
        found = getattr(transformers, str(recorded), None) if recorded else None
        if found is None or "video_processor" not in inspect.signature(found.__init__).parameters:
            raise
        return image_only_processor(found).from_pretrained(snapshot, local_files_only=True)


def load_generation_model(
    hf_model: str,
    model_class: Any,
    processor_class: Any,
    device: str,
    fp16: bool = False,
    quantize: str = "none",
    bf16: bool = False,
) -> tuple[Any, Any]:
    """(processor, model in eval mode on `device`) for a transformers generation checkpoint.

    AutoProcessor picks the processor the checkpoint records; `processor_class` is the
    fallback for checkpoints saved without one. Both come from the local cache only. On a GPU,
    `fp16` computes in float16, `bf16` in bfloat16; `quantize` "8bit"/"4bit" loads the weights
    through bitsandbytes (GPU only; ignored on the CPU).
    """
    snapshot = local_snapshot(hf_model)
    processor: Any = auto_processor(snapshot)
    if not hasattr(processor, "image_processor"):  # no processor_class recorded
        processor = processor_class.from_pretrained(snapshot, local_files_only=True)
    # Any: transformers' decorated `to` does not type-check, and `generate` returns a Union.
    on_gpu = device.startswith("cuda")
    if quantize != "none" and on_gpu:
        from transformers import BitsAndBytesConfig

        bits = {"load_in_8bit": True} if quantize == "8bit" else {"load_in_4bit": True}
        model: Any = model_class.from_pretrained(
            snapshot,
            local_files_only=True,
            quantization_config=BitsAndBytesConfig(**bits),
            device_map={"": device},
        )
        return processor, model.eval()  # bitsandbytes places the weights itself
    model = model_class.from_pretrained(snapshot, local_files_only=True)
    if bf16 and on_gpu:
        import torch

        model = model.to(torch.bfloat16)
    elif fp16 and on_gpu:
        model = model.half()
    return processor, model.to(device).eval()


def _pb_utils() -> Any:
    """Triton's stub-only module, imported when a stub calls (it exists nowhere else)."""
    return importlib.import_module("triton_python_backend_utils")


def load_task(factory: Callable[..., T], args: dict[str, Any], detail: str = "") -> T:
    """Build a task from initialize()'s args: the parameters the factory takes, typed; what is
    absent keeps the factory's own default (defaults live in the task classes only).

    `detail` formats the end of the log line from the task, e.g. " ({task.precision})"."""
    params = model_parameters(args)
    device = torch_device(args["model_instance_kind"], args["model_instance_device_id"])
    accepted = inspect.signature(factory).parameters
    kwargs: dict[str, Any] = {"device": device}
    for name, convert in PARAMETER_TYPES.items():
        if name in params and name in accepted:
            kwargs[name] = convert(params[name])
    task = factory(params["hf_model"], **kwargs)
    suffix = detail.format(task=task)
    _pb_utils().Logger.log_info(f"{args['model_name']}: {params['hf_model']} on {device}{suffix}")
    return task


def input_array(request: Any, name: str) -> np.ndarray:
    """A request's input tensor as numpy; AttributeError when the request lacks it."""
    return _pb_utils().get_input_tensor_by_name(request, name).as_numpy()


class Columns:
    """Several per-item outputs of one batch that `run_batch` splits back per request together
    (it slices what `infer` returns): Columns(vectors, token_counts)[2:5]."""

    def __init__(self, *arrays: np.ndarray) -> None:
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: slice) -> Columns:
        return Columns(*(array[index] for array in self.arrays))


def run_batch(
    requests: Sequence[Any],
    read: Callable[[Any], list[Any]],
    infer: Callable[[list[Any], Any], Sequence[Any]],
    write: Callable[[Sequence[Any]], list[Any]],
    group_key: Callable[[Any], Hashable] | None = None,
    name: str = "inference",
) -> list[Any]:
    """One Triton batch: each request read on its own (a ValueError or AttributeError fails
    only that request), one `infer(items, key)` per distinct `group_key` (normally one for the
    whole batch), results split back in request order and turned into tensors by `write`."""
    pb_utils = _pb_utils()
    items: dict[int, list[Any]] = {}
    errors: dict[int, Any] = {}
    groups: dict[Hashable, list[int]] = {}
    for index, request in enumerate(requests):
        try:
            items[index] = read(request)
            key = group_key(request) if group_key is not None else None
        except (AttributeError, ValueError) as exc:
            errors[index] = pb_utils.TritonError(str(exc))
            continue
        groups.setdefault(key, []).append(index)
    results: dict[int, Sequence[Any]] = {}
    for key, members in groups.items():
        try:
            outputs = infer([item for index in members for item in items[index]], key)
        except Exception as exc:  # fail these requests, keep the model serving
            pb_utils.Logger.log_error(f"{name} failed: {type(exc).__name__}: {exc}")
            for index in members:
                errors[index] = pb_utils.TritonError(f"{name} failed")
            continue
        offset = 0
        for index in members:
            results[index] = outputs[offset : offset + len(items[index])]
            offset += len(items[index])
    return [
        pb_utils.InferenceResponse(error=errors[index])
        if index in errors
        else pb_utils.InferenceResponse(output_tensors=write(results[index]))
        for index in range(len(requests))
    ]

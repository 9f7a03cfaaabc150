"""Read images from multipart/form-data or JSON (base64, `image` or `batch`) plus options."""

from __future__ import annotations

import binascii
import re
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pybase64
from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from frontend.core.config import LimitsSection
from frontend.core.errors import APIError, InvalidRequest
from frontend.core.jsonbody import decode_json
from frontend.images.decode import ImageLimits
from frontend.images.pages import decode_file
from frontend.sandbox.pool import Lease

OptionsT = TypeVar("OptionsT", bound=BaseModel)
_DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)(?:;[\w=.+-]+)*;base64,", re.IGNORECASE)
IMAGE_FIELDS = {"image", "batch"}


@dataclass
class RawImages:
    """The request's undecoded files (with the media types they were declared as)."""

    data: list[bytes]
    types: list[str | None]  # multipart part Content-Type, or a `data:` URL's media type
    single: bool
    options: Any


@dataclass
class ImageRequest:
    images: list[np.ndarray]
    single: bool  # one `image` (reply with a singular field) rather than a batch
    options: Any


def _invalid(message: str, details: dict[str, Any] | None = None) -> APIError:
    return InvalidRequest(message, details)


def _b64(value: Any, index: int) -> tuple[bytes, str | None]:
    if not isinstance(value, str):
        raise _invalid(f"image {index}: must be a base64 string", {"image_index": index})
    value = value.strip()
    prefix = _DATA_URL.match(value)
    payload = value[prefix.end() :] if prefix else value
    try:
        data = pybase64.b64decode(payload, validate=True)  # SIMD: 70x the stdlib on photos
    except (binascii.Error, ValueError):
        raise _invalid(f"image {index}: is not valid base64", {"image_index": index}) from None
    return data, prefix.group(1).lower() if prefix else None


def _options(model: type[OptionsT], values: dict[str, Any], limits: LimitsSection) -> OptionsT:
    try:  # the limits let the schema check its own bounds
        return model.model_validate(values, context={"limits": limits})
    except ValidationError as exc:
        item = exc.errors()[0]
        field = ".".join(str(p) for p in item["loc"]) or "body"
        raise _invalid(f"invalid request: {field}: {item['msg']}") from None


async def _from_json(request: Request, options: type[OptionsT], limits: LimitsSection) -> RawImages:
    body = decode_json(await request.body())
    if not isinstance(body, dict):
        raise _invalid("request body must be a JSON object")
    if ("image" in body) == ("batch" in body):
        raise _invalid("send exactly one of `image` (one base64 image) or `batch` (a list)")
    if "image" in body:
        encoded, single = [body["image"]], True
    else:
        if not isinstance(body["batch"], list) or not body["batch"]:
            raise _invalid("`batch` must be a non-empty list of base64 images")
        encoded, single = body["batch"], False
    rest = {k: v for k, v in body.items() if k not in IMAGE_FIELDS}
    decoded = [_b64(value, i) for i, value in enumerate(encoded)]
    return RawImages(
        [data for data, _ in decoded],
        [media for _, media in decoded],
        single,
        _options(options, rest, limits),
    )


async def _from_form(request: Request, options: type[OptionsT], limits: LimitsSection) -> RawImages:
    max_images = limits.max_images_per_request
    try:
        form = await request.form(max_files=max_images + 1, max_fields=32)
    except MultiPartException as exc:
        raise _invalid(f"invalid multipart body: {exc.message[:200]}") from None
    try:
        files = [item for item in form.getlist("image") if isinstance(item, UploadFile)]
        if not files:
            raise _invalid("multipart body has no `image` file part")
        if any(not isinstance(v, UploadFile) for v in form.getlist("image")):
            raise _invalid("`image` parts must be files")
        data = [await f.read() for f in files]
        types = [(f.content_type or "").split(";")[0].strip().lower() or None for f in files]
        rest: dict[str, Any] = {}
        for key, value in form.multi_items():
            if key == "image":
                continue
            if isinstance(value, UploadFile) or key in rest:
                raise _invalid(f"form field `{key[:50]}` must be a single text value")
            rest[key] = value
    finally:
        await form.close()
    return RawImages(data, types, len(data) == 1, _options(options, rest, limits))


async def read_raw(request: Request, options: type[OptionsT], limits: LimitsSection) -> RawImages:
    """Parse the request's files and options; nothing is decoded yet."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        raw = await _from_form(request, options, limits)
    elif content_type in ("application/json", ""):
        raw = await _from_json(request, options, limits)
    else:
        raise _invalid("send multipart/form-data (image files) or application/json (base64)")
    if len(raw.data) > limits.max_images_per_request:
        raise _invalid(
            f"too many images: {len(raw.data)} > {limits.max_images_per_request} per request"
        )
    return raw


async def decode_images(
    raw: RawImages, limits: LimitsSection, worker: Lease, fit_within: int | None = None
) -> ImageRequest:
    """Check and decode the images (shrunk to `fit_within` if given) in the lease's sandbox
    worker, which holds them since `pages.classify`."""
    image_limits = ImageLimits(limits.max_image_pixels, limits.max_image_side)
    images = [
        await worker.call(decode_file, index, image_limits, fit_within)
        for index in range(len(raw.data))
    ]
    return ImageRequest(images, raw.single, raw.options)

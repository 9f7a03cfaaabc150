"""Tiny, randomly initialised test models, imported into a data dir's cache.

The hub is out of reach here, so tests and demos run on look-alikes of the real checkpoints:
a BLIP captioner, a LLaVA chat model (CLIP vision tower, Llama text model, byte-level BPE
tokenizer, LLaVA-1.5's chat template), Qwen2-VL, SmolVLM (Idefics3) and Florence-2 look-alikes
on the same tokenizer, a TrOCR line recogniser and a BERT cross-encoder
reranker with the real classes and file layout, 32-wide and 2 layers deep, built from a fixed
seed (same weights, same files, same revision). The builders live in tools/test_models/
(shapes.py: what they share; text.py; vlm.py); a new one goes there and into BUILDERS here.

    python tools/build_test_models.py --data-dir DIR [--only caption|llava|qwen2-vl|...]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

from frontend.models.cache import import_model, is_downloaded
from tools.build_clip_models import save_tiny_buffalo, save_tiny_clip, save_tiny_clip_immich_built
from tools.test_models.text import save_blip, save_cls_embedder, save_reranker, save_trocr
from tools.test_models.vlm import save_florence2, save_llava, save_qwen2_vl, save_smolvlm

TINY_BLIP = "homelab-test/tiny-blip"
TINY_LLAVA = "homelab-test/tiny-llava"
TINY_QWEN2_VL = "homelab-test/tiny-qwen2-vl"
TINY_SMOLVLM = "homelab-test/tiny-smolvlm"
TINY_FLORENCE2 = "homelab-test/tiny-florence2"
TINY_TROCR = "homelab-test/tiny-trocr"
TINY_CLS_EMBEDDER = "homelab-test/tiny-cls-embedder"
TINY_RERANKER = "homelab-test/tiny-reranker"
TINY_CLIP = "homelab-test/tiny-clip"  # image embedding (tools/build_clip_models.py)
TINY_CLIP_IMMICH = "homelab-test/tiny-clip-immich"
TINY_BUFFALO = "homelab-test/tiny-buffalo"
SEED = 0


BUILDERS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "caption": (TINY_BLIP, save_blip),
    "llava": (TINY_LLAVA, save_llava),
    "qwen2-vl": (TINY_QWEN2_VL, save_qwen2_vl),
    "smolvlm": (TINY_SMOLVLM, save_smolvlm),
    "florence2": (TINY_FLORENCE2, save_florence2),
    "ocr": (TINY_TROCR, save_trocr),
    "rerank": (TINY_RERANKER, save_reranker),
}


# built only when asked for by name (--only cls-embedding): the unit tests of the embedding
# pipeline need it, the integration suite does not
ON_REQUEST: dict[str, tuple[str, Callable[[Path], None]]] = {
    "cls-embedding": (TINY_CLS_EMBEDDER, save_cls_embedder),
    # image embedding and faces (tests/integration/test_image_embedding.py, test_immich.py)
    "clip": (TINY_CLIP, save_tiny_clip),
    "clip-immich": (TINY_CLIP_IMMICH, save_tiny_clip_immich_built),
    "faces": (TINY_BUFFALO, save_tiny_buffalo),
}


def build_test_models(data_dir: Path, only: str | None = None) -> dict[str, str]:
    """Build what is missing from DATA_DIR/models/hub; returns task name -> model id."""
    import torch

    if only is not None and only not in {**BUILDERS, **ON_REQUEST}:
        raise ValueError(f"unknown model group {only!r}; choose from {sorted(BUILDERS)}")
    hub = Path(data_dir) / "models" / "hub"
    built: dict[str, str] = {}
    groups = {**BUILDERS, **({only: ON_REQUEST[only]} if only in ON_REQUEST else {})}
    for name, (model_id, save) in groups.items():
        if only not in (None, name):
            continue
        built[name] = model_id
        if is_downloaded(hub, model_id):
            continue
        # Seeded per model (so --only builds the same weights) without touching the caller's RNG.
        with torch.random.fork_rng(devices=[]), tempfile.TemporaryDirectory() as tmp:
            torch.manual_seed(SEED)
            save(Path(tmp))
            saved = Path(tmp) / "model"  # builders that need scratch space save under model/
            import_model(saved if saved.is_dir() else Path(tmp), model_id, hub)
    return built


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--only", choices=sorted({**BUILDERS, **ON_REQUEST}))
    args = parser.parse_args(argv)
    for name, model_id in build_test_models(args.data_dir, args.only).items():
        print(f"{name}: {model_id}")


if __name__ == "__main__":
    main()

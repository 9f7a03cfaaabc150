"""tools.bench_images' --layout option: RapidOCR's instances x threads for a bench run."""

from __future__ import annotations

import argparse

import pytest

from tools.bench_images import layout, shipped_ocr_entry


def test_layout_parses_instances_by_threads() -> None:
    assert layout("2x1") == (2, 1)
    assert layout("1X2") == (1, 2)


@pytest.mark.parametrize("text", ["2", "2x", "x2", "2x1x1", "0x2", "2x0", "twoxone"])
def test_layout_rejects_malformed_values(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        layout(text)


def test_override_replaces_shipped_layout() -> None:
    shipped = shipped_ocr_entry()
    assert shipped["instances"] >= 1 and shipped["threads"] >= 1
    entry = shipped_ocr_entry((3, 1))
    assert (entry["instances"], entry["threads"]) == (3, 1)
    assert entry["hf_model"] == shipped["hf_model"] == "rapidocr/PP-OCRv4"

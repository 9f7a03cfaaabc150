"""Unit-test isolation: no HOMELAB_* or Hugging Face cache settings leak in from the shell."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_HF_CACHE_VARS = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("HOMELAB_"):
            monkeypatch.delenv(name)
    for name in _HF_CACHE_VARS:
        monkeypatch.delenv(name, raising=False)
    # The CLI writes HF_HOME into os.environ; setting it here means monkeypatch restores it.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home-unused"))

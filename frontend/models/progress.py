"""Download progress: a tqdm stand-in that huggingface_hub's download code drives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def byte_counter(on_bytes: Callable[[int], None]) -> type:
    """A stand-in for tqdm that huggingface_hub's download code drives: counts, never prints."""

    class _Progress:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.total: int | None = kwargs.get("total")
            self.n = 0

        def __enter__(self) -> _Progress:
            return self

        def __exit__(self, *args: object) -> None:
            return None

        def update(self, n: float | None = 1) -> None:
            count = int(n or 0)
            self.n += count
            on_bytes(count)

        # Network bytes (xet transfers, or every chunk in http_get): update() already counts
        # the bytes written; having update_transfer also keeps the xet reporter from creating
        # a second bar with this class.
        def update_transfer(self, n: float | None = 1) -> None:
            return None

        def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
            return None

        def set_transfer_postfix_str(self, *args: Any, **kwargs: Any) -> None:
            return None

        def set_description(self, *args: Any, **kwargs: Any) -> None:
            return None

        def refresh(self, *args: Any, **kwargs: Any) -> None:
            return None

        def close(self) -> None:
            return None

    return _Progress

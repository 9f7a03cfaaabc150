"""Download progress: huggingface_hub's own tqdm, silenced, counting bytes into a callback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from huggingface_hub.utils import tqdm as hub_tqdm


def byte_counter(on_bytes: Callable[[int], None]) -> type[hub_tqdm]:
    """A `tqdm_class` for `hf_hub_download`: every byte it reports goes to `on_bytes` (which may
    raise to cancel the download), and nothing is ever printed."""

    class ByteCounter(hub_tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True  # the hub enables bars on a TTY; a service prints none
            super().__init__(*args, **kwargs)

        def update(self, n: float | None = 1) -> bool | None:
            on_bytes(int(n or 0))
            # A disabled tqdm counts nothing; keep `n` right for whoever reads it.
            self.n += n or 0
            return None

        # Network bytes (xet transfers, or every chunk in http_get): update() already counts
        # the bytes written. Having update_transfer also makes the xet reporter route its
        # transfer figures here instead of opening a second bar of this class (counted twice).
        def update_transfer(self, n: float | None = 1) -> None:
            return None

        def set_transfer_postfix_str(self, *args: Any, **kwargs: Any) -> None:
            return None

    return ByteCounter

"""What the tasks built on one cached checkpoint share: the constructor that a model.py's
load_task calls (the typed config.pbtxt parameters, their defaults), and the command line of
the child-process exports (`python -m frontend.tasks.<x>_export SNAPSHOT`)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from frontend.tasks.common import local_snapshot


class SnapshotTask:
    """A task on the local snapshot of `hf_model` (never the network): `load` builds the rest.
    `engine` asks for an engine ("auto": the task picks); load sets the one that serves."""

    def __init__(
        self,
        hf_model: str,
        threads: int = 1,
        device: str = "cpu",
        fp16: bool = False,
        engine: str = "auto",
    ) -> None:
        self.engine = engine
        self.load(local_snapshot(hf_model), threads, device, fp16, engine)

    def load(self, snapshot: Path, threads: int, device: str, fp16: bool, engine: str) -> None:
        raise NotImplementedError


def export_main(export: Callable[[Path], object], doc: str | None, argv: list[str] | None) -> int:
    """An export module's main: its docstring's first line as the help, one SNAPSHOT argument."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("snapshot", type=Path)
    export(parser.parse_args(argv).snapshot)
    return 0

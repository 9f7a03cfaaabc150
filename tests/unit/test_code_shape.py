"""The code keeps its shape (issue 28): short files, thin entry points, no import cycles."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools import code_shape

# Owned by other work in progress (issue 28 item 4): each leaves this list when it is split.
PENDING_LONG_FILES: set[str] = set()
PENDING_THICK_ENTRY_POINTS: set[str] = set()
PENDING_CYCLES: list[list[str]] = []


def test_no_file_is_over_the_line_limit() -> None:
    long = {path for path, _ in code_shape.long_files()}
    assert long - PENDING_LONG_FILES == set()


def test_every_triton_entry_point_is_thin() -> None:
    entries = code_shape.entry_points()
    assert len(entries) >= 5  # the globs still find the model folders
    thick = {path for path, lines in entries if lines > code_shape.MAX_ENTRY_POINT_LINES}
    assert thick - PENDING_THICK_ENTRY_POINTS == set()


def test_no_modules_import_each_other() -> None:
    graph = code_shape.import_graph()
    assert "frontend.jobs.store" in graph["frontend.jobs.service"]  # the graph sees real imports
    cycles = [group for group in code_shape.import_cycles(graph) if group not in PENDING_CYCLES]
    assert cycles == []


@pytest.mark.skipif(shutil.which("duplicates") is None, reason="the `duplicates` command counts")
def test_product_code_repeats_at_most_twelve_blocks() -> None:
    rows, how = code_shape.repeated_blocks()
    assert how == code_shape.DUPLICATES_HOW
    assert not any("incomplete:" in row for row in rows)  # every file was read and paired
    assert len(rows) <= code_shape.MAX_REPEATED_BLOCKS == 12, "\n".join(rows)


def test_code_lines_skip_blanks_comments_and_docstrings() -> None:
    source = (
        '"""Module."""\n\n# why\nimport os\n\n\n'
        'def f(x):\n    """Doc\n    string."""\n    return (\n        x\n    )  # done\n'
    )
    assert code_shape.code_lines(source) == 5  # import, def, and the three lines of the return


def _package(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / "frontend" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_cycles_are_found_through_relative_and_function_level_imports(tmp_path: Path) -> None:
    _package(
        tmp_path,
        {
            "__init__.py": "",
            "jobs/__init__.py": "",
            "jobs/a.py": "from . import b\n",
            "jobs/b.py": "def later():\n    from frontend.jobs.a import thing\n",
            "jobs/c.py": "from .d import x\n",
            "jobs/d.py": "import frontend.jobs.e\n",
            "jobs/e.py": "from ..jobs import c\n",
            "jobs/f.py": "from frontend.jobs import a\n",
        },
    )
    graph = code_shape.import_graph(tmp_path)
    assert code_shape.mutual_imports(graph) == [("frontend.jobs.a", "frontend.jobs.b")]
    assert code_shape.import_cycles(graph) == [
        ["frontend.jobs.a", "frontend.jobs.b"],
        ["frontend.jobs.c", "frontend.jobs.d", "frontend.jobs.e"],
    ]


def test_long_files_count_every_source_file_but_vendored_ones(tmp_path: Path) -> None:
    long_text = "x = 1\n" * (code_shape.MAX_FILE_LINES + 1)
    _package(
        tmp_path, {"big.py": long_text, "static/app.js": long_text, "static/lib.min.js": long_text}
    )
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "ok.py").write_text("x = 1\n" * code_shape.MAX_FILE_LINES)
    assert {path for path, _ in code_shape.long_files(tmp_path)} == {
        "frontend/big.py",
        "frontend/static/app.js",
    }

"""Reports the code's shape (issue 28): long files, thick entry points, import cycles, repeats.

    .venv/bin/python -m tools.code_shape          # print the four figures
    .venv/bin/python -m tools.code_shape --check  # exit 1 if a limit is broken

(a) files over MAX_FILE_LINES lines under frontend/, model_repository/ and tools/;
(b) code lines (not blank, comment or docstring) of each model_repository/*/1/model.py;
(c) modules of `frontend` that import each other, directly or round a longer loop (every
    import counts: function-level ones, `from . import x`, and those under TYPE_CHECKING);
(d) repeated same-shape blocks in the product code (frontend/, model_repository/) that are
    not boilerplate, as the `duplicates` command counts them where it is on PATH, else an
    AST-normalised statement-window hash (a rougher figure, said so in the output). The limit,
    MAX_REPEATED_BLOCKS, holds for the `duplicates` figure only.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import re
import shutil
import subprocess
import sys
import tokenize
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "frontend"
LONG_FILE_DIRS = ("frontend", "model_repository", "tools")
PRODUCT_DIRS = ("frontend", "model_repository")
SOURCE_SUFFIXES = {".py", ".js", ".css", ".html", ".sh", ".pbtxt"}
MAX_FILE_LINES = 400
MAX_ENTRY_POINT_LINES = 30
MIN_BLOCK_LINES = 6  # the `duplicates` command's default: six shared lines make a pair
MAX_REPEATED_BLOCKS = 12  # issue 28: at most 12 repeated same-shape blocks that are not boilerplate
DUPLICATES_HOW = "the `duplicates` command"


def source_files(root: Path, dirs: tuple[str, ...]) -> list[Path]:
    """Source files below `dirs`, minus caches and vendored, minified files."""
    found = []
    for top in dirs:
        for path in sorted((root / top).rglob("*")):
            if (
                path.is_file()
                and path.suffix in SOURCE_SUFFIXES
                and "__pycache__" not in path.parts
                and ".min." not in path.name  # a vendored library is not our code
            ):
                found.append(path)
    return found


def long_files(root: Path = ROOT) -> list[tuple[str, int]]:
    """(path, lines) of every source file over MAX_FILE_LINES lines."""
    sizes = []
    for path in source_files(root, LONG_FILE_DIRS):
        lines = len(path.read_text(encoding="utf-8", errors="replace").splitlines())
        if lines > MAX_FILE_LINES:
            sizes.append((str(path.relative_to(root)), lines))
    return sizes


def code_lines(source: str) -> int:
    """Lines holding code: not blank, not only a comment, not part of a docstring."""
    docstring_lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            value = first.value if isinstance(first, ast.Expr) else None
            if (
                first is not None
                and isinstance(value, ast.Constant)
                and isinstance(value.value, str)
            ):
                docstring_lines.update(range(first.lineno, (first.end_lineno or 0) + 1))
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    lines: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip and token.type != tokenize.ENDMARKER:
            lines.update(range(token.start[0], token.end[0] + 1))
    return len(lines - docstring_lines)


def entry_points(root: Path = ROOT) -> list[tuple[str, int]]:
    """(path, code lines) of each model_repository/*/1/model.py."""
    return [
        (str(path.relative_to(root)), code_lines(path.read_text(encoding="utf-8")))
        for path in sorted((root / "model_repository").glob("*/1/model.py"))
    ]


def module_names(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name -> file for every module of the package (a package is its __init__)."""
    names = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports anywhere in its file."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()

    def add(target: str) -> None:
        # `import a.b.c` names a.b.c; the closest module that exists is the one imported
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.add(target)

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                drop = node.level - (1 if is_package else 0)
                base = base[: len(base) - drop] if drop else base
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            for alias in node.names:
                full = f"{stem}.{alias.name}"
                add(full if full in modules else stem)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = module_names(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def mutual_imports(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """Pairs of modules that import each other."""
    return sorted(
        (a, b) for a, targets in graph.items() for b in targets if a < b and a in graph.get(b, ())
    )


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(groups)


def repeated_blocks(root: Path = ROOT) -> tuple[list[str], str]:
    """Rows of repeated same-shape blocks in the product code that are not boilerplate."""
    command = shutil.which("duplicates")
    if command is None:
        return _hashed_blocks(root), "AST statement windows (no `duplicates` on PATH; approximate)"
    rows = []
    for top in PRODUCT_DIRS:
        result = subprocess.run(
            [command, "--repo", str(root / top), "--most", "200", "--seconds", "120"],
            capture_output=True,
            text=True,
            check=False,
        )
        for line in result.stdout.splitlines():
            if re.match(r"D\d+ ", line) and "boilerplate" not in line:
                left, _, right = line.split(" ", 1)[1].partition(" ~ ")
                rows.append(f"{top}/{left} ~ {top}/{right}")
            elif line.startswith("incomplete:"):
                rows.append(f"{top}: {line}")
    return rows, DUPLICATES_HOW


class _Shape(ast.NodeTransformer):
    """Folds names, attributes and constants so blocks alike but for them hash the same."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.Name(id="_", ctx=node.ctx)

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        return ast.Attribute(value=node.value, attr="_", ctx=node.ctx)

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return ast.Constant(value=type(node.value).__name__)

    def visit_arg(self, node: ast.arg) -> ast.AST:
        return ast.arg(arg="_", annotation=None)


def _hashed_blocks(root: Path) -> list[str]:
    """Pairs of statement runs of MIN_BLOCK_LINES or more lines with the same folded shape."""
    windows: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    for path in source_files(root, PRODUCT_DIRS):
        if path.suffix != ".py":
            continue
        rel = str(path.relative_to(root))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            statements = getattr(node, "body", None)
            if not isinstance(statements, list):
                continue  # a lambda's body is one expression
            body = [
                s
                for s in statements
                if isinstance(s, ast.stmt)
                and not isinstance(s, ast.Import | ast.ImportFrom)
                and not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))
            ]
            shapes = [ast.dump(_Shape().visit(ast.parse(ast.unparse(s)))) for s in body]
            for start in range(len(body)):
                for stop in range(start + 1, len(body) + 1):
                    first, last = body[start].lineno, body[stop - 1].end_lineno or 0
                    if last - first + 1 >= MIN_BLOCK_LINES:
                        digest = hashlib.sha1("\n".join(shapes[start:stop]).encode()).hexdigest()
                        windows[digest].append((rel, first, last))
                        break  # the shortest window from each start is enough to see a repeat
    rows, seen = [], set()
    for places in windows.values():
        if len(places) > 8:  # as common as that, it is boilerplate
            continue
        for i, (a, a0, a1) in enumerate(places):
            for b, b0, b1 in places[i + 1 :]:
                if (a, b) in seen or (a == b and a1 >= b0):
                    continue
                seen.add((a, b))
                rows.append(f"{a}:{a0}-{a1} ~ {b}:{b0}-{b1}")
    return sorted(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a limit is broken")
    parser.add_argument("--no-repeats", action="store_true", help="skip (d), the slowest part")
    args = parser.parse_args(argv)

    long = long_files()
    print(f"(a) files over {MAX_FILE_LINES} lines: {len(long)}")
    for path, lines in long:
        print(f"    {lines:5d} {path}")
    entries = entry_points()
    thick = [entry for entry in entries if entry[1] > MAX_ENTRY_POINT_LINES]
    print(f"(b) model.py code lines (limit {MAX_ENTRY_POINT_LINES}): {len(thick)} over")
    for path, lines in entries:
        print(f"    {lines:5d} {path}")
    graph = import_graph()
    pairs, cycles = mutual_imports(graph), import_cycles(graph)
    print(f"(c) modules importing each other: {len(pairs)}; import cycles: {len(cycles)}")
    for a, b in pairs:
        print(f"    {a} <-> {b}")
    for group in cycles:
        if len(group) > 2:
            print(f"    cycle of {len(group)}: {', '.join(group)}")
    repeats = False
    if not args.no_repeats:
        rows, how = repeated_blocks()
        print(
            f"(d) repeated same-shape blocks, not boilerplate, in product code: {len(rows)} "
            f"({how}; limit {MAX_REPEATED_BLOCKS})"
        )
        for row in rows:
            print(f"    {row}")
        repeats = how == DUPLICATES_HOW and len(rows) > MAX_REPEATED_BLOCKS
    return 1 if args.check and (long or thick or cycles or repeats) else 0


if __name__ == "__main__":
    sys.exit(main())

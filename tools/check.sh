#!/usr/bin/env bash
# Lint, type-check, build the docs (mkdocs --strict) and run every test (unit, API, integration).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check --no-cache .
.venv/bin/ruff format --no-cache --check .
.venv/bin/mypy
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict  # into site/ (ignored); not --quiet: it hides the warnings
.venv/bin/python -m pytest -q "$@"

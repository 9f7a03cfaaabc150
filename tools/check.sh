#!/usr/bin/env bash
# Lint, type-check and run every test (unit, API and integration on a real Triton).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check --no-cache .
.venv/bin/ruff format --no-cache --check .
.venv/bin/mypy
.venv/bin/python -m pytest -q "$@"

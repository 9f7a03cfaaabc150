"""Fixtures of the container tests: each image built once per run, every container removed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.engine import REPO, Build, build_image, engine_problem, remove_created, remove_stale

ALL_IN_ONE_TAG = "localhost/homelab-ai:e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in item.nodeid:
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def engine() -> Iterator[None]:
    """Podman that can run containers here, else the whole directory is skipped (why)."""
    problem = engine_problem()
    if problem is not None:
        pytest.skip(problem)
    remove_stale()  # what an interrupted earlier run left (its pytest process is gone)
    try:
        yield
    finally:
        remove_created()


@pytest.fixture(scope="session")
def all_in_one_image(engine: None) -> Build:
    # TORCH_INDEX_URL empty: torch from this machine's pip setup (the local CPU wheel).
    return build_image(ALL_IN_ONE_TAG, REPO / "Dockerfile", build_args={"TORCH_INDEX_URL": ""})

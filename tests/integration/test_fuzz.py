"""Schemathesis over the app's own OpenAPI, with an API key, against the session's real Triton:
no 5xx but the documented upstream ones, every status documented, every body as documented."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from frontend.app import create_app
from frontend.core import errors
from frontend.core.config import ApiKey, RateLimitSection, SecuritySection, Settings
from frontend.core.security import hash_key
from frontend.triton.embedded import EmbeddedTriton
from tests.conftest import MINILM_ID
from tests.integration.conftest import HUB_CAPTION_MODEL, MODELS, RunningApi, serve_app

logger = logging.getLogger(__name__)
KEY = "hlai_fuzzing-key-0123456789"
# Per operation; with the coverage phase's own cases this keeps the run near two minutes.
MAX_EXAMPLES = 25
# Upstream conditions an operation documents: the crawl target failing (502/504), the crawl
# queue or browser (503), Triton or a model load (503). Any other 5xx is a bug.
UPSTREAM_CODES = {
    errors.CRAWL_DNS_FAILED,
    errors.CRAWL_UNREACHABLE,
    errors.CRAWL_TLS_FAILED,
    errors.CRAWL_TIMEOUT,
    errors.CRAWL_FAILED,
    errors.MODEL_LOAD_FAILED,
    errors.SERVICE_UNAVAILABLE,
    errors.RESOURCE_EXHAUSTED,
    # Firecrawl's names of the crawl failures (/v2/scrape, /v2/map)
    "SCRAPE_DNS_RESOLUTION_ERROR",
    "SCRAPE_SSL_ERROR",
}
# Model ids that name session state other tests rely on: never deleted, patched or unloaded.
PROTECTED = {e["id"] for task in MODELS.values() for e in task} | {MINILM_ID, HUB_CAPTION_MODEL}
statuses: Counter[int] = Counter()  # of every generated case, for the run's summary line


def no_server_error_but_documented_upstream(ctx: Any, response: Any, case: Any) -> None:
    """schemathesis' not_a_server_error, except a documented 502/503/504 for an upstream."""
    documented = case.operation.definition.raw["responses"]
    if response.status_code in (502, 503, 504) and str(response.status_code) in documented:
        body = response.json()
        error = body.get("error")
        # our envelope {"error": {"code"}}, or Firecrawl's {"success": false, "code"}
        code = error.get("code") if isinstance(error, dict) else body.get("code")
        if code in UPSTREAM_CODES:
            return
    not_a_server_error(ctx, response, case)


CHECKS = [
    no_server_error_but_documented_upstream,
    status_code_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzz_api(
    settings: Settings, triton: EmbeddedTriton, request: pytest.FixtureRequest
) -> Iterator[RunningApi]:
    own = settings.model_copy(
        deep=True,
        update={
            "triton": settings.triton.model_copy(update={"url": triton.grpc_url}),
            "security": SecuritySection(
                api_keys=[ApiKey(key_hash=hash_key(KEY), name="fuzzer")],
                rate_limit=RateLimitSection(per_key="100000/minute"),
            ),
            # a target that answers nothing must not hold a case for long
            "crawl": settings.crawl.model_copy(
                update={"default_timeout_ms": 2000, "max_timeout_ms": 3000, "js_wait_ms": 500}
            ),
            # on, as shipped: the fuzzer's Cache-Control values and X-Cache answers included
            "cache": settings.cache.model_copy(update={"enabled": True}),
        },
    )
    app = create_app(own)
    server, thread, url = serve_app(app)
    started = time.monotonic()
    yield RunningApi(url, app)
    elapsed = time.monotonic() - started
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as http:
        # Models the fuzzer added are persisted in the shared settings.db: take them out again.
        for model in http.get("/api/models").json()["models"]:
            if model["added_at_runtime"]:
                http.delete(f"/api/models/{model['config_id']}")
    server.should_exit = True
    thread.join(30)
    by_status = ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
    summary = f"schemathesis: {statuses.total()} generated cases in {elapsed:.0f} s ({by_status})"
    logger.info(summary)
    # The closing note quotes this line: show it even when the test passes quietly.
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if capture is not None and reporter is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(summary)


def operation_labels() -> list[str]:
    """Every operation of the schema (collected from an app that never starts)."""
    spec = create_app(Settings()).openapi()
    return [f"{m.upper()} {p}" for p, ops in spec["paths"].items() for m in ops]


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_api: RunningApi) -> Any:
    loaded = schemathesis.openapi.from_dict(fuzz_api.app.openapi())
    loaded.config.base_url = fuzz_api.url
    return loaded


@pytest.mark.parametrize("label", operation_labels())
def test_api_answers_generated_requests_as_documented(fuzz_schema: Any, label: str) -> None:
    method, path = label.split(" ", 1)
    operation = fuzz_schema[path][method]
    # Valid requests reach the services; invalid ones exercise every 4xx path.
    cases = st.one_of(
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
    )

    @given(case=cases)
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        if any(str(value) in PROTECTED for value in (case.path_parameters or {}).values()):
            return
        # The key replaces any generated one: auth is test_security's subject, not this one's.
        case.headers["Authorization"] = f"Bearer {KEY}"
        response = case.call_and_validate(checks=CHECKS, timeout=60)
        statuses[response.status_code] += 1

    run()

"""The hardening issue's five parser bombs against the running service: each file on every
document route, with its status, the wall time, and how far the frontend process's memory rose
(its peak RSS, reset before each request through /proc/PID/clear_refs).

    python -m tools.bench_hostile_documents [--code CHECKOUT] [--timeout 90]
                                            [--routes /tika/text /api/ocr ...]

Starts `homelab-ai serve` (embedded Triton, RapidOCR) from this checkout, or from `--code`
(e.g. an unpacked `git archive` of an older commit, for a before/after comparison).
"""

from __future__ import annotations

import argparse
import base64
import tempfile
import time
from pathlib import Path

import httpx

from tests.hostile_documents import HOSTILE
from tools.benchlib import running_service

ROUTES = ["/tika/text", "/tika", "/process", "/api/ocr"]
MODELS = {
    "text_embedding": [],
    "ocr": [{"id": "rapidocr", "hf_model": "rapidocr/PP-OCRv4", "default": True, "threads": 1}],
}


def _status(pid: int, key: str) -> int:
    """A /proc/PID/status memory figure, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def send(url: str, route: str, data: bytes, media: str | None, timeout: float) -> str:
    try:
        if route == "/api/ocr":
            body = {"image": base64.b64encode(data).decode()}
            response = httpx.post(url + route, json=body, timeout=timeout)
        else:
            headers = {"Content-Type": media} if media else {}
            response = httpx.put(url + route, content=data, headers=headers, timeout=timeout)
    except httpx.TimeoutException:
        return f"no answer in {timeout:.0f} s"
    if response.status_code == 200:
        return "200"
    try:
        return f"{response.status_code} {response.json()['error']['code']}"
    except (ValueError, KeyError, TypeError):
        return str(response.status_code)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, help="checkout whose frontend the service runs")
    parser.add_argument("--timeout", type=float, default=90)
    parser.add_argument("--routes", nargs="+", default=ROUTES)
    parser.add_argument("--files", nargs="+", default=list(HOSTILE))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with running_service(work / "run", work / "data", MODELS, frontend_code=args.code) as (
            url,
            service,
        ):
            print(f"{'file':22} {'route':11} {'status':28} {'seconds':>8} {'RSS peak +MB':>12}")
            for name in args.files:
                build, media = HOSTILE[name]
                data = build()
                for route in args.routes:
                    rss = _status(service.pid, "VmRSS")
                    Path(f"/proc/{service.pid}/clear_refs").write_text("5")  # peak := now
                    started = time.perf_counter()
                    status = send(url, route, data, media, args.timeout)
                    seconds = time.perf_counter() - started
                    grown = (_status(service.pid, "VmHWM") - rss) / 2**20
                    print(f"{name:22} {route:11} {status:28} {seconds:8.2f} {grown:12.0f}")
                    if status.startswith("no answer"):
                        time.sleep(5)  # let the server finish (or not) before the next one
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

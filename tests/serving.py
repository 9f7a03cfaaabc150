"""Serve an ASGI app over real HTTP on loopback, in a thread, for tests."""

from __future__ import annotations

import threading

import uvicorn
from fastapi import FastAPI

from frontend.triton.embedded import free_port


def serve_app(app: FastAPI) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Start uvicorn on a free loopback port; returns (server, thread, base URL)."""
    port = free_port()
    # As `homelab-ai serve`: client addresses from the socket, X-Forwarded-For left to the app.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(600):
        if server.started:
            break
        if not thread.is_alive():
            raise RuntimeError("the API server failed to start")
        threading.Event().wait(0.05)
    return server, thread, f"http://127.0.0.1:{port}"

"""Serve an ASGI app over real HTTP on loopback, in a thread, for tests."""

from __future__ import annotations

import socket
import threading

import uvicorn
from fastapi import FastAPI


def serve_app(app: FastAPI) -> tuple[uvicorn.Server, threading.Thread, str]:
    """Start uvicorn on a free loopback port; returns (server, thread, base URL).

    The socket is bound here, before uvicorn starts, so no other process can take the port
    between choosing it and listening on it (a free_port() guess could lose that race)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # As `homelab-ai serve`: client addresses from the socket, X-Forwarded-For left to the app.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", proxy_headers=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(600):
        if server.started:
            break
        if not thread.is_alive():
            raise RuntimeError("the API server failed to start")
        threading.Event().wait(0.05)
    return server, thread, f"http://127.0.0.1:{port}"

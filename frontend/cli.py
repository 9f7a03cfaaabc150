"""The `homelab-ai` command: serve, run job workers, and import local model folders."""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from frontend.core.config import ConfigError, Settings, load_settings

DEFAULT_CONFIG = Path("config.yaml")


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    config = args.config
    if config is None and DEFAULT_CONFIG.exists():
        config = DEFAULT_CONFIG
    settings = load_settings(config, **overrides)
    if args.data_dir is not None:  # flags beat the environment, which beats the file
        settings = settings.model_copy(update={"data_dir": args.data_dir})
    # Every HF library reads HF_HOME at import: set it before any of them is imported.
    os.environ["HF_HOME"] = str(settings.models_dir.resolve())
    return settings


def _serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    server = settings.server.model_copy(
        update={k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    )
    settings = settings.model_copy(update={"server": server})
    problem = insecure_bind(settings)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per readiness poll otherwise
    # Access lines carry their own timestamp (the documented format): print them as they are.
    access = logging.getLogger("homelab_ai.access")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.propagate = False
    import uvicorn

    from frontend.app import create_app
    from frontend.core.serving import DrainingServer

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_level=settings.log_level,
        loop="uvloop",
        http="httptools",
        # After the drain (server.drain_timeout_seconds) nothing should be left to wait for.
        timeout_graceful_shutdown=5,
        # Client addresses come from the socket; X-Forwarded-For is read by the security
        # middleware, and only from security.trusted_proxies.
        proxy_headers=False,
        access_log=False,  # the service writes its own access log line per request
    )
    DrainingServer(config, app.state.drain, settings.server.drain_timeout_seconds).run()
    return 0


def _worker(args: argparse.Namespace) -> int:
    settings = _settings(args)
    workers = args.workers if args.workers is not None else max(settings.jobs.workers, 1)
    jobs = settings.jobs.model_copy(update={"enabled": True, "workers": workers})
    settings = settings.model_copy(update={"jobs": jobs})
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    import asyncio

    from frontend.jobs.worker import run_worker

    return asyncio.run(run_worker(settings))


def insecure_bind(settings: Settings) -> str | None:
    """Why serving this address would expose the API without keys, if it would."""
    security = settings.security
    if security.auth_required or security.allow_unauthenticated_remote:
        return None
    host = settings.server.host
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return None
    except ValueError:
        pass  # a host name: it may resolve to anything
    return (
        f"refusing to serve {host} without API keys: add keys (homelab-ai keys create NAME), "
        "bind 127.0.0.1, or set security.allow_unauthenticated_remote: true"
    )


def _keys_create(args: argparse.Namespace) -> int:
    from frontend.core.security import hash_key, new_key

    name = args.name.strip()
    if not name or len(name) > 100:
        print("error: the name must be 1-100 characters", file=sys.stderr)
        return 2
    key = new_key()
    print(f"API key for {name} (shown once; store it now):\n\n    {key}\n")
    print("Add this to config.yaml under security.api_keys:\n")
    print(f"    - key_hash: {hash_key(key)}")
    print(f"      name: {json.dumps(name)}")
    return 0


def _import(args: argparse.Namespace) -> int:
    settings = _settings(args)
    from frontend.models.cache import InvalidModelId, import_model

    try:
        result = import_model(args.source, args.id, settings.models_dir / "hub")
    except (InvalidModelId, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"imported {result.model_id}: {result.files} files, {result.bytes / 1e6:.1f} MB "
        f"-> {result.snapshot}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="homelab-ai", description=__doc__)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", type=Path, help="config file (default: ./config.yaml if present)"
    )
    common.add_argument("--data-dir", type=Path, help="data directory (models, Triton entries)")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", parents=[common], help="run Triton and the API")
    serve.add_argument("--host", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to bind (default 8000)")
    serve.set_defaults(handler=_serve)

    worker = commands.add_parser(
        "worker",
        parents=[common],
        help="run queued jobs without serving HTTP (jobs.broker: redis://... for other machines)",
    )
    worker.add_argument("--workers", type=int, help="job threads (default jobs.workers, >= 1)")
    worker.set_defaults(handler=_worker)

    models = commands.add_parser("models", help="manage model files")
    model_commands = models.add_subparsers(dest="models_command", required=True)
    imp = model_commands.add_parser(
        "import", parents=[common], help="copy a local model folder into the HF cache layout"
    )
    imp.add_argument("source", type=Path, help="folder with the model files (config.json, ...)")
    imp.add_argument("--id", required=True, help="Hugging Face id to file it under, ORG/NAME")
    imp.set_defaults(handler=_import)

    keys = commands.add_parser("keys", help="manage API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser(
        "create", help="print a new random API key and its config.yaml entry"
    )
    create.add_argument("name", help="who the key is for (shown in logs and metrics)")
    create.set_defaults(handler=_keys_create)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""API keys, the IP allowlist and per-caller rate limits, as one pure-ASGI middleware.

Deny by default: every path needs a key (when auth is on) except the few in `open_paths`,
so a route added later is protected without anyone remembering to.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import logging
import math
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.types import ASGIApp, Receive, Scope, Send

from frontend.core.config import SecuritySection
from frontend.core.errors import FORBIDDEN, RATE_LIMIT_EXCEEDED, UNAUTHORIZED, envelope
from frontend.core.probes import PROBE_PATHS
from frontend.core.redis_options import reconnecting

logger = logging.getLogger(__name__)

# Probes must work without keys and from anywhere the network allows.
# Documentation and the admin page's static files hold no data; the API calls they make do.
DOC_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
OPEN_PREFIXES: tuple[str, ...] = ("/admin/static/",)
OPEN_EXACT = frozenset({"/", "/admin", "/admin/", "/favicon.ico"})
# A job replayed in-process (frontend.jobs.dispatch) carries its owner under this scope key;
# uvicorn never puts it in a scope, so no network request can claim it.
JOB_SCOPE_KEY = "homelab.job"
ANONYMOUS = "anonymous"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def hash_key(key: str) -> str:
    """What config.yaml stores: the sha256 hex digest of the key."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def owner_id(key_hash: str) -> str:
    """Who owns a job: derived from the key's stored hash (never the key), stable across
    restarts and renames. Requests without a key belong to "anonymous"."""
    return "key-" + hashlib.sha256(bytes.fromhex(key_hash)).hexdigest()[:16]


def new_key() -> str:
    return "hlai_" + secrets.token_urlsafe(32)


def _networks(values: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(value, strict=False) for value in values]


@functools.lru_cache(maxsize=4096)
def _address(text: str) -> Address | None:
    try:
        address = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _within(address: Address | None, networks: list[Network]) -> bool:
    return address is not None and any(address in network for network in networks)


@dataclass
class Caller:
    """Who made a request, as far as security decisions go."""

    address: Address | None
    key_name: str | None = None

    @property
    def ip(self) -> str:
        return str(self.address) if self.address is not None else "unknown"


@dataclass
class SecurityPolicy:
    settings: SecuritySection
    _allow: list[Network] = field(init=False)
    _proxies: list[Network] = field(init=False)
    _keys: list[tuple[bytes, str, str | None]] = field(init=False)
    _secrets: dict[str, str] = field(init=False)
    owners: frozenset[str] = field(init=False)  # owner ids of the valid keys

    def __post_init__(self) -> None:
        self._allow = _networks(self.settings.ip_allowlist)
        self._proxies = _networks(self.settings.trusted_proxies)
        self._keys = [
            (bytes.fromhex(k.key_hash), k.name, k.rate_limit)
            for k in self.settings.api_keys
            if not k.revoked
        ]
        self.owners = frozenset(owner_id(stored.hex()) for stored, _, _ in self._keys)
        self._secrets = {
            owner_id(k.key_hash): k.webhook_secret
            for k in self.settings.api_keys
            if k.webhook_secret and not k.revoked
        }

    def client_address(self, scope: Scope) -> Address | None:
        """The peer; behind trusted proxies, the last X-Forwarded-For hop they did not add."""
        client = scope.get("client")
        peer = _address(client[0]) if client else None
        if not self._proxies or not _within(peer, self._proxies):
            return peer
        forwarded = b",".join(v for k, v in scope["headers"] if k == b"x-forwarded-for")
        hops = [h for h in forwarded.decode("latin-1").split(",") if h.strip()]
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                return peer  # garbage in the chain: trust only what we saw
            if not _within(address, self._proxies):
                return address
        return peer

    def allowed(self, address: Address | None) -> bool:
        return not self._allow or _within(address, self._allow)

    def key_for(self, token: str) -> tuple[str, str | None] | None:
        """(name, rate limit) of the key, comparing against every stored hash in constant time."""
        found = self.key_and_owner(token)
        return found[:2] if found is not None else None

    def key_and_owner(self, token: str) -> tuple[str, str | None, str] | None:
        """(name, rate limit, owner id) of the key; the owner id is stable and not secret."""
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        found = None
        for stored, name, rate in self._keys:
            if hmac.compare_digest(digest, stored) and found is None:
                found = (name, rate, owner_id(stored.hex()))
        return found

    def webhook_secret(self, owner: str) -> str | None:
        """The key's own webhook secret, if it has one."""
        return self._secrets.get(owner)

    def is_open(self, path: str, method: str) -> bool:
        """Served without a key or a rate limit. The admin page's paths only to GET and HEAD:
        POST / is TEI's inference route and must not ride on the page's openness."""
        if path in PROBE_PATHS or path in DOC_PATHS:
            return True
        if path == "/metrics":
            return not self.settings.metrics_require_auth
        if method.upper() not in ("GET", "HEAD"):
            return False
        return path in OPEN_EXACT or path.startswith(OPEN_PREFIXES)


class RateLimiter:
    """limits' moving window, in memory or in Redis (shared by several frontends)."""

    def __init__(self, settings: SecuritySection) -> None:
        config = settings.rate_limit
        self.enabled = config.enabled
        uri = config.storage_uri
        options: dict[str, Any] = {}
        if uri.startswith(("redis://", "rediss://", "redis+sentinel://")):
            options["implementation"] = "redispy"
            options.update(reconnecting())  # a Redis restart must not serve requests unlimited
        storage = storage_from_string(f"async+{uri}", **options)
        assert isinstance(storage, Storage)
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(self.storage)
        self.per_key = parse_many(config.per_key) if config.per_key else []
        self.per_ip = parse_many(config.per_ip) if config.per_ip else []
        self._own = {
            key.name: parse_many(key.rate_limit)
            for key in settings.api_keys
            if key.rate_limit and not key.revoked
        }
        self._warned = 0.0

    def items_for(self, caller: Caller) -> tuple[list[RateLimitItem], str]:
        if caller.key_name is not None:
            return self._own.get(caller.key_name, self.per_key), f"key:{caller.key_name}"
        return self.per_ip, f"ip:{caller.ip}"

    async def check(self, caller: Caller) -> tuple[bool, dict[str, str]]:
        """(allowed, X-RateLimit-* and Retry-After headers). Fails open if storage is down."""
        if not self.enabled:
            return True, {}
        items, identity = self.items_for(caller)
        headers: dict[str, str] = {}
        try:
            for item in items:
                allowed = await self.limiter.hit(item, "homelab-ai", identity)
                stats = await self.limiter.get_window_stats(item, "homelab-ai", identity)
                reset = max(0.0, stats.reset_time - time.time())
                if not allowed:
                    return False, {
                        "Retry-After": str(max(1, math.ceil(reset))),
                        "X-RateLimit-Limit": str(item.amount),
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": str(math.ceil(reset)),
                    }
                if not headers:
                    headers = {
                        "X-RateLimit-Limit": str(item.amount),
                        "X-RateLimit-Remaining": str(stats.remaining),
                        "X-RateLimit-Reset": str(math.ceil(reset)),
                    }
        except Exception as exc:  # Redis down: serve rather than refuse everyone
            if time.monotonic() - self._warned > 60:
                self._warned = time.monotonic()
                logger.warning("rate limit storage unavailable, not limiting: %s", exc)
            return True, {}
        return True, headers


class Security:
    """The app's policy and limiter (app.state.security): replaced whole when settings change."""

    def __init__(self, settings: SecuritySection) -> None:
        self.policy = SecurityPolicy(settings)
        self.limiter = RateLimiter(settings)


class SecurityMiddleware:
    """IP allowlist (403), API keys (401), then rate limits (429), before any route runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def _bearer(self, scope: Scope) -> str | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    return token.strip()
                return ""
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        security: Security = scope["app"].state.security
        policy = security.policy
        path = scope["path"]
        state = scope.setdefault("state", {})
        caller = Caller(policy.client_address(scope))
        state["client_ip"] = caller.ip
        request_id = str(state.get("request_id", ""))
        if path in PROBE_PATHS:
            await self.app(scope, receive, send)
            return
        job = scope.get(JOB_SCOPE_KEY)
        if job is not None:  # a job's replay: checked when the job was created...
            state["api_key_name"] = job.get("key_name")
            state["owner"] = owner = job["owner"]
            if owner != ANONYMOUS and owner not in policy.owners:  # ...but revoked since
                message = "the API key that created this job is no longer valid"
                await envelope(401, UNAUTHORIZED, message, request_id)(scope, receive, send)
                return
            await self.app(scope, receive, send)
            return
        state["owner"] = ANONYMOUS
        if not policy.allowed(caller.address):
            response = envelope(
                403, FORBIDDEN, "this address is not allowed to use the service", request_id
            )
            await response(scope, receive, send)
            return
        token = self._bearer(scope)
        settings = policy.settings
        if token:
            found = policy.key_and_owner(token)
            if found is not None:
                caller.key_name = found[0]
                state["api_key_name"] = found[0]
                state["owner"] = found[2]
        needs_key = (
            settings.auth_required
            and not policy.is_open(path, scope["method"])
            and caller.key_name is None
            and not (
                settings.allow_localhost_unauthenticated
                and caller.address is not None
                and caller.address.is_loopback
            )
        )
        if needs_key:
            if token is None:
                message = "an API key is required: send 'Authorization: Bearer <key>'"
                challenge = 'Bearer realm="homelab-ai"'
            elif token == "":
                message = "the Authorization header must be 'Bearer <key>'"
                challenge = 'Bearer realm="homelab-ai", error="invalid_request"'
            else:
                message = "the API key is not valid"
                challenge = 'Bearer realm="homelab-ai", error="invalid_token"'
            response = envelope(
                401, UNAUTHORIZED, message, request_id, headers={"WWW-Authenticate": challenge}
            )
            await response(scope, receive, send)
            return
        if policy.is_open(path, scope["method"]):
            await self.app(scope, receive, send)
            return
        allowed, headers = await security.limiter.check(caller)
        if not allowed:
            response = envelope(
                429,
                RATE_LIMIT_EXCEEDED,
                f"rate limit exceeded; retry in {headers['Retry-After']} s",
                request_id,
                headers=headers,
            )
            await response(scope, receive, send)
            return
        extra = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

        async def send_with_limits(message: Any) -> None:
            if message["type"] == "http.response.start" and extra:
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_limits)

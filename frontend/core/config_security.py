"""config.yaml's security section: API keys, address allowlists and rate limits."""

from __future__ import annotations

import ipaddress
import re

from pydantic import Field, field_validator, model_validator

from frontend.core.config_sections import Section


class ApiKey(Section):
    key_hash: str
    name: str = Field(min_length=1, max_length=100)
    rate_limit: str | None = None  # this key's limit, else security.rate_limit.per_key
    revoked: bool = False  # kept for the record, refused like an unknown key
    # signs webhooks of this key's jobs (X-Homelab-Signature); else jobs.webhook_secret
    webhook_secret: str | None = Field(default=None, min_length=16, max_length=256)

    @field_validator("rate_limit")
    @classmethod
    def _check_rate(cls, value: str | None) -> str | None:
        return _check_rate_limit(value) if value is not None else None

    @field_validator("key_hash")
    @classmethod
    def _check_hash(cls, value: str) -> str:
        if not re.fullmatch(r"[0-9a-f]{64}", value):
            raise ValueError("must be the sha256 hex digest of the key (64 lowercase hex digits)")
        return value


def _check_rate_limit(value: str) -> str:
    from limits import parse_many

    try:
        parse_many(value)
    except ValueError:
        raise ValueError("must be a rate such as '60/minute' or '10/second;1000/day'") from None
    return value


def _check_networks(values: list[str]) -> list[str]:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"'{value[:60]}' is not an IP address or CIDR network") from None
    return values


class RateLimitSection(Section):
    enabled: bool = True
    per_key: str | None = "3000/minute"  # each API key's limit (a key's own rate_limit wins)
    per_ip: str | None = None  # each client address, for requests without a key; None: none
    storage_uri: str = "memory://"  # memory:// (one frontend) or redis://host:6379/0 (shared)

    @field_validator("per_key", "per_ip")
    @classmethod
    def _check_rates(cls, value: str | None) -> str | None:
        return _check_rate_limit(value) if value is not None else None

    @field_validator("storage_uri")
    @classmethod
    def _check_storage(cls, value: str) -> str:
        if not value.startswith(("memory://", "redis://", "rediss://", "redis+sentinel://")):
            raise ValueError("must be memory:// or a redis:// URI")
        return value


class SecuritySection(Section):
    # None: on as soon as api_keys lists a key. false: no keys asked (loopback only, see below)
    auth_enabled: bool | None = None
    api_keys: list[ApiKey] = Field(default_factory=list)
    allow_localhost_unauthenticated: bool = False  # requests from 127.0.0.1/::1 need no key
    ip_allowlist: list[str] = Field(default_factory=list)  # CIDRs; empty: every address
    trusted_proxies: list[str] = Field(default_factory=list)  # whose X-Forwarded-For counts
    metrics_require_auth: bool = False  # /metrics behind the API keys too
    # Serving a non-loopback address with auth off must be asked for explicitly.
    allow_unauthenticated_remote: bool = False
    rate_limit: RateLimitSection = Field(default_factory=RateLimitSection)

    @field_validator("ip_allowlist", "trusted_proxies")
    @classmethod
    def _check_cidrs(cls, values: list[str]) -> list[str]:
        return _check_networks(values)

    @property
    def auth_required(self) -> bool:
        return bool(self.api_keys) if self.auth_enabled is None else self.auth_enabled

    @model_validator(mode="after")
    def _check_keys(self) -> SecuritySection:
        hashes = [key.key_hash for key in self.api_keys]
        if len(set(hashes)) != len(hashes):
            raise ValueError("api_keys: the same key_hash is listed twice")
        usable = [key for key in self.api_keys if not key.revoked]
        if self.auth_enabled and not usable and not self.allow_localhost_unauthenticated:
            raise ValueError(
                "auth_enabled is true but api_keys has no usable key: nobody could call the API"
            )
        return self

"""The probe paths: no data, answered to any Host, any address and without a key (Kubernetes
and Docker health checks, Weaviate's inference-container probes)."""

PROBE_PATHS = frozenset({"/health", "/ready", "/.well-known/live", "/.well-known/ready", "/ping"})

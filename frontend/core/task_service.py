"""The base of the services that run one task's models (embedding, reranking)."""

from __future__ import annotations

from frontend.cache.service import ResultCache
from frontend.core.config import LimitsSection
from frontend.models.registry import ModelRegistry


class TaskService:
    """The registry that finds and loads the models, the request limits, and the result cache
    (None: off)."""

    def __init__(
        self, registry: ModelRegistry, limits: LimitsSection, cache: ResultCache | None = None
    ) -> None:
        self.registry = registry
        self.limits = limits
        self.cache = cache

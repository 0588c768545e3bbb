"""The model catalogue (local plugins and configured upstreams) and the running model instances.

Local models are plugins, found through the ``stockade.models`` entry-point group: each entry
point names a function returning ``ModelSpec`` objects. A server starts its deployed models in
the background (``Resource.start_models``); any other model starts on first use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from importlib.metadata import entry_points

from stockade.backends.base import (
    ChatModel,
    EmbeddingModel,
    ModelHost,
    ModelSpec,
    PoolSpec,
    PoolState,
    PoolStateName,
    WorkerPool,
)
from stockade.backends.gguf import file_spec
from stockade.backends.started import StartedOnce
from stockade.backends.upstream import Upstream, UpstreamModel
from stockade.backends.worker import ModelWorkers
from stockade.config import Settings
from stockade.store import ModelFile

log = logging.getLogger(__name__)

LOCAL = "local"
Model = ChatModel | EmbeddingModel


def discover_local_models() -> list[ModelSpec]:
    specs: list[ModelSpec] = []
    for entry_point in entry_points(group="stockade.models"):
        try:
            specs.extend(entry_point.load()())
        except Exception:
            log.exception("model plugin %s failed to load; its models are unavailable", entry_point.name)
    return specs


class LocalHost:
    """Models run their worker processes as children of this process (one server process)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def worker_pool(self, spec: PoolSpec) -> WorkerPool:
        return ModelWorkers(spec)

    async def close(self) -> None:
        """Each pool belongs to its model, which closes it."""


class _PoolsOf:
    """The host a local model is built with: the real one, noting the pools the model asks for,
    so that health checks can ask those pools whether their workers run."""

    def __init__(self, host: ModelHost) -> None:
        self.host = host
        self.settings = host.settings
        self.pools: list[WorkerPool] = []

    def worker_pool(self, spec: PoolSpec) -> WorkerPool:
        pool = self.host.worker_pool(spec)
        self.pools.append(pool)
        return pool

    async def close(self) -> None:
        """The real host is the registry's to close."""


_WORST_FIRST: tuple[PoolStateName, ...] = ("failed", "starting", "ready")


class ModelRegistry:
    def __init__(
        self,
        settings: Settings,
        host: ModelHost | None = None,
        local_models: Sequence[ModelSpec] | None = None,
    ) -> None:
        """``local_models`` replaces the plugins' models (tests pass a fake model here)."""
        self.settings = settings
        self.host = host or LocalHost(settings)
        self._upstreams = {name: Upstream(name, cfg) for name, cfg in settings.upstreams.items()}
        specs = list(discover_local_models() if local_models is None else local_models)
        for name, cfg in settings.upstreams.items():
            specs += [ModelSpec(id=m, kind="chat", backend=name) for m in cfg.models]
            specs += [ModelSpec(id=m, kind="embeddings", backend=name) for m in cfg.embedding_models]
        self._specs = {(spec.backend, spec.id): spec for spec in specs}
        self._files: dict[tuple[str, str], ModelSpec] = {}  # the user's GGUF files, from the store
        self._running: StartedOnce[tuple[str, str], Model] = StartedOnce()
        self._pools: dict[tuple[str, str], list[WorkerPool]] = {}
        self._background: set[asyncio.Task[Model]] = set()

    async def use_model_files(self, files: Sequence[ModelFile]) -> None:
        """The user's own GGUF files as the store lists them now: new ones become deployable,
        removed or changed ones stop. A file never hides a plugin's or an upstream's model."""
        specs = {(LOCAL, f.id): file_spec(f, self.settings.local.context_tokens) for f in files}
        for key, spec in self._files.items():
            if specs.get(key) != spec:
                del self._specs[key]
                await self._running.discard(key)
        for key, spec in specs.items():
            if key in self._specs and key not in self._files:
                log.warning("the model file %s is ignored: a model plugin offers %s", spec.path, spec.id)
                continue
            self._specs[key] = spec
        self._files = {key: spec for key, spec in specs.items() if self._specs.get(key) is spec}

    def catalogue(self) -> list[ModelSpec]:
        return list(self._specs.values())

    def find(self, model: str, backend: str | None = None) -> list[ModelSpec]:
        """Specs matching a model id, optionally on one backend."""
        return [
            spec
            for spec in self._specs.values()
            if spec.id == model and (backend is None or spec.backend == backend)
        ]

    def spec(self, backend: str, model: str) -> ModelSpec | None:
        return self._specs.get((backend, model))

    async def get(self, backend: str, model: str) -> Model:
        """The running model; concurrent first callers share one start-up."""
        return await self._running.get((backend, model), lambda: self._start(backend, model))

    async def _start(self, backend: str, model: str) -> Model:
        if backend in self._upstreams:
            return UpstreamModel(self._upstreams[backend], model)
        spec = self._specs[(backend, model)]
        assert spec.factory is not None
        host = _PoolsOf(self.host)
        instance = spec.factory(host)
        self._pools[(backend, model)] = host.pools
        await instance.start()
        log.info("model %s started", model)
        return instance

    async def health(self, backend: str, model: str) -> PoolState:
        """Whether a local model can serve now: the worst of its pools' states, with their
        workers summed. A model nobody has asked for yet is started now, in the background, so
        that the probe reports it loading rather than waiting for a first call."""
        status, _ = self._running.status((backend, model))
        self.start_in_background(backend, model)
        if status != "running":
            name: PoolStateName = "failed" if status == "failed" else "starting"
            return {"state": name, "workers": 0, "processes": 0, "busy": 0, "waiting": 0}
        states = [await pool.state() for pool in self._pools.get((backend, model), [])]
        return {
            "state": min((s["state"] for s in states), key=_WORST_FIRST.index, default="ready"),
            "workers": sum(s["workers"] for s in states),
            "processes": sum(s["processes"] for s in states),
            "busy": sum(s["busy"] for s in states),
            "waiting": sum(s["waiting"] for s in states),
        }

    def start_in_background(self, backend: str, model: str) -> None:
        """Start a model nobody has asked for yet without waiting for it; its first caller (or
        /healthz) then finds it loading or ready. A model whose start failed is left to its next
        caller, which tries again."""
        status, _ = self._running.status((backend, model))
        if status == "absent" and self.spec(backend, model) is not None:
            task = asyncio.ensure_future(self.get(backend, model))
            self._background.add(task)
            task.add_done_callback(self._started_in_background)

    def _started_in_background(self, task: asyncio.Task[Model]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a model failed to start", exc_info=task.exception())

    async def close(self) -> None:
        for task in self._background:
            task.cancel()
        await self._running.close()
        for upstream in self._upstreams.values():
            await upstream.close()
        await self.host.close()

"""The query models a service holds: one encoder (and its micro-batcher) per model stamp in use, so that each
served index's queries are expanded by the model its stamp names, and an alias moved to an index of another
model is followed without a restart.

A model not yet held is loaded in a worker thread; until it is ready ``get`` answers None (the service says
503 with ``Retry-After``) — a query is never expanded by another model meanwhile. ``preload`` starts the load
early (a reindex announces its target's model in the source stamp before it swaps the alias). At most ``keep``
models are held; the least recently used is dropped (its batcher stopped ``grace`` seconds later, so requests
using it finish), never the default one. A failed load is tried again after ``retry_failed`` seconds.
"""
from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Callable

from ..api import BridgeError, ConfigError, ModelStamp
from .batcher import BatchConfig, MicroBatcher

log = logging.getLogger(__name__)


def model_key(model: ModelStamp) -> tuple:
    return model.query_key()


@dataclass
class Held:
    encoder: object
    batcher: MicroBatcher


@dataclass(frozen=True)
class PoolConfig:
    keep: int = 3                        # models held at once (the default one besides): served ones + a preload
    grace: float = 30.0                  # seconds a dropped model keeps answering the requests that hold it
    retry_failed: float = 30.0           # seconds before a failed load is tried again
    allowed: tuple[str, ...] = ()        # model references (fnmatch patterns) that may be loaded; () = any

    def __post_init__(self) -> None:
        if self.keep < 1:
            raise ConfigError("keep must be >= 1")

    def allows(self, model: str) -> bool:
        return not self.allowed or any(fnmatchcase(model, p) for p in self.allowed)


class ModelPool:
    def __init__(self, load: Callable[[ModelStamp], object] | None, cfg: PoolConfig = PoolConfig(),
                 batch: BatchConfig = BatchConfig(), observe: Callable[[str, float], None] | None = None,
                 on_load: Callable[[str], None] = lambda result: None):
        self._load, self.cfg, self.batch, self._observe, self._on_load = load, cfg, batch, observe, on_load
        self._held: OrderedDict[tuple, Held] = OrderedDict()
        self._loading: dict[tuple, asyncio.Task] = {}
        self._failed: dict[tuple, tuple[str, float]] = {}
        self.default: Held | None = None

    async def add(self, encoder, default: bool = False) -> Held:
        """Hold an encoder loaded beforehand (the service's ``--model``)."""
        held = Held(encoder, MicroBatcher(encoder.encode_query, self.batch, self._observe))
        await held.batcher.start()
        self._held[model_key(encoder.stamp)] = held
        if default:
            self.default = held
        return held

    def loaded(self, model: ModelStamp) -> bool:
        return model_key(model) in self._held

    async def get(self, model: ModelStamp) -> Held | None:
        """The held encoder for ``model``, or None while it loads (the load is started). ``BridgeError`` when the
        model may not be loaded here or its last load failed."""
        key = model_key(model)
        if key in self._held:
            self._held.move_to_end(key)
            return self._held[key]
        self.preload(model)
        if key in self._failed:
            raise BridgeError(self._failed[key][0])
        return None

    def preload(self, model: ModelStamp) -> None:
        """Start loading ``model`` unless it is held or loading already."""
        key = model_key(model)
        loop = asyncio.get_running_loop()
        if key in self._failed and loop.time() - self._failed[key][1] >= self.cfg.retry_failed:
            del self._failed[key]
        if key in self._held or key in self._loading or key in self._failed:
            return
        if self._load is None or not self.cfg.allows(model.model):
            self._failed[key] = (f"model {model.model!r} may not be loaded by this service (--allow-model)", 1e18)
            return
        self._loading[key] = asyncio.get_running_loop().create_task(self._load_one(key, model))

    async def _load_one(self, key: tuple, model: ModelStamp) -> None:
        log.warning("loading query model %s (revision %s)", model.model, model.revision[:8])
        try:
            encoder = await asyncio.get_running_loop().run_in_executor(None, self._load, model)
            diffs = model.mismatches(encoder.stamp)
            if diffs:
                raise ConfigError(f"model {model.model!r} loaded here differs from the index's ({'; '.join(diffs)})")
            await self.add(encoder)
            self._on_load("ok")
            await self._evict()
        except Exception as exc:  # reported to every request for this model
            self._failed[key] = (f"could not load model {model.model!r}: {exc}", asyncio.get_running_loop().time())
            self._on_load("failed")
            log.error("%s", self._failed[key][0])
        finally:
            self._loading.pop(key, None)

    async def _evict(self) -> None:
        while len([h for h in self._held.values() if h is not self.default]) > self.cfg.keep:
            key = next(k for k, h in self._held.items() if h is not self.default)
            held = self._held.pop(key)
            asyncio.get_running_loop().call_later(self.cfg.grace, lambda b=held.batcher: asyncio.ensure_future(b.stop()))
            log.warning("dropped query model %s (least recently used)", key[0])

    async def stop(self) -> None:
        for task in list(self._loading.values()):
            task.cancel()
        for held in self._held.values():
            await held.batcher.stop()

"""Micro-batching of concurrent query expansions into one model forward, with an LRU cache.

Requests wait at most ``max_wait_ms`` after the first one of a batch, and a batch holds at most
``max_batch`` texts; the forward pass runs in a worker thread so the event loop keeps accepting.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from cachetools import LRUCache

from ..api import BridgeError, SparseVector


class Unavailable(BridgeError):
    """The batcher stopped (its model was unloaded): the request may be retried."""


@dataclass(frozen=True)
class BatchConfig:
    max_batch: int = 32
    max_wait_ms: float = 2.0
    cache_size: int = 10_000

    def __post_init__(self) -> None:
        if self.max_batch < 1 or self.max_wait_ms < 0 or self.cache_size < 0:
            raise ValueError("max_batch must be >= 1, max_wait_ms and cache_size >= 0")


class MicroBatcher:
    """``await expand(text)`` -> SparseVector; concurrent calls share forward passes."""

    def __init__(self, encode: Callable[[Sequence[str]], list[SparseVector]], cfg: BatchConfig = BatchConfig(),
                 observe: Callable[[str, float], None] | None = None):
        self._encode, self.cfg = encode, cfg
        self._observe = observe or (lambda name, value: None)
        self._cache: LRUCache | None = LRUCache(cfg.cache_size) if cfg.cache_size else None
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._loop(), name="splade-microbatch")

    async def stop(self) -> None:
        """Finish what is queued, then stop; what is queued after that fails with ``Unavailable``."""
        if self._task is None:
            return
        await self._queue.put(None)
        await self._task
        self._task = None
        while not self._queue.empty():
            item = self._queue.get_nowait()
            if item is not None and not item[1].done():
                item[1].set_exception(Unavailable("the query model was unloaded; retry"))

    async def expand(self, text: str) -> SparseVector:
        if self._cache is not None and text in self._cache:
            self._observe("cache_hit", 1)
            return self._cache[text]
        self._observe("cache_miss", 1)
        if self._task is None:
            raise Unavailable("the query model was unloaded; retry")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((text, future))
        return await future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            batch = [first]
            deadline = time.monotonic() + self.cfg.max_wait_ms / 1000
            while len(batch) < self.cfg.max_batch:
                timeout = deadline - time.monotonic()
                try:
                    item = self._queue.get_nowait() if timeout <= 0 else \
                        await asyncio.wait_for(self._queue.get(), timeout)
                except (asyncio.TimeoutError, asyncio.QueueEmpty):
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            await self._run(loop, batch)

    async def _run(self, loop, batch) -> None:
        texts = list(dict.fromkeys(text for text, _ in batch))  # identical texts share one row
        self._observe("batch_size", len(texts))
        try:
            vectors = await loop.run_in_executor(None, self._encode, texts)
        except Exception as exc:  # every waiter gets the failure, the loop lives on
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        by_text = dict(zip(texts, vectors))
        if self._cache is not None:
            self._cache.update(by_text)
        for text, fut in batch:
            if not fut.done():
                fut.set_result(by_text[text])

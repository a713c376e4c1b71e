"""Following an alias and holding query models, with fakes: the stamp cache re-reads a name after its time and at
once when told, the model pool never hands out another model's encoder while one loads, and drops the least
recently used. Request-body checks name unknown fields."""
import asyncio

import pytest

from bridge.errors import BridgeError, QueryError
from bridge.expansion import Expander, checked
from bridge.indices import StampCache
from bridge.serve.models import ModelPool, PoolConfig
from bridge.serve.schema import SearchRequest, describe_invalid
from bridge.stamp import IndexStamp, ModelStamp


class _Client:
    """A cluster whose alias ``docs`` points where ``self.target`` says."""

    def __init__(self):
        self.target, self.reads = "docs-a", 0

    class _Indices:
        def __init__(self, outer):
            self.outer = outer

        def get_mapping(self, index):
            self.outer.reads += 1
            stamp = IndexStamp(model=ModelStamp(self.outer.target, "r" + self.outer.target)).to_meta()
            return {self.outer.target: {"mappings": {"_meta": {"splade_bridge": stamp},
                                                     "properties": {"splade": {"type": "rank_features"}}}}}

    @property
    def indices(self):
        return self._Indices(self)


def test_stamp_cache_follows_after_its_time_or_when_told():
    client, now = _Client(), [0.0]
    cache = StampCache(client, seconds=2.0, clock=lambda: now[0])
    assert cache.resolve("docs")[0] == "docs-a"
    client.target = "docs-b"
    now[0] = 1.0
    assert cache.resolve("docs")[0] == "docs-a" and client.reads == 1  # trusted for 2 s
    now[0] = 2.5
    assert cache.resolve("docs")[0] == "docs-b" and cache.moves == 1
    client.target = "docs-c"
    cache.forget("docs")
    assert cache.resolve("docs")[0] == "docs-c" and cache.moves == 2


class _Encoder:
    def __init__(self, model):
        self.stamp = model

    def encode_query(self, texts):
        return []


def test_model_pool_loads_in_the_background_and_keeps_the_most_recent():
    a, b, c = (ModelStamp(name, "rev-" + name) for name in "abc")
    loads = []

    def load(model):
        loads.append(model.model)
        return _Encoder(model)

    async def scenario():
        pool = ModelPool(load, PoolConfig(keep=1))
        await pool.add(_Encoder(a), default=True)
        assert (await pool.get(a)).encoder.stamp == a
        assert await pool.get(b) is None  # loading: the caller answers 503, never with model a
        for _ in range(100):
            await asyncio.sleep(0.01)
            if pool.loaded(b):
                break
        assert (await pool.get(b)).encoder.stamp == b
        pool.preload(c)
        for _ in range(100):
            await asyncio.sleep(0.01)
            if pool.loaded(c):
                break
        assert pool.loaded(c) and not pool.loaded(b) and pool.loaded(a)  # b dropped, the default kept
        refused = ModelPool(load, PoolConfig(allowed=("a*",)))
        with pytest.raises(BridgeError, match="may not be loaded"):
            await refused.get(b)
        await pool.stop()

    asyncio.run(scenario())
    assert loads == ["b", "c"]


def test_one_expansion_step_refuses_empty_texts():
    for text in ("", "   \n", None, 5):
        with pytest.raises(QueryError, match="empty"):
            checked(text)
    with pytest.raises(QueryError, match="empty"):
        Expander(encoder=None).tokens("  ")


def test_unknown_request_fields_are_named():
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as err:
        SearchRequest.model_validate({"text": "x", "filter": [], "from": 5})
    assert describe_invalid(err.value.errors()).startswith("unknown fields: filter, from")
    with pytest.raises(ValidationError) as err:
        SearchRequest.model_validate({"text": "x", "size": True})
    assert "size" in describe_invalid(err.value.errors())

"""Creating and opening splade-bridge indices on the cluster: the index stamp is written once, at
creation, and read back (typed) by everything that ingests into or searches an index."""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Callable

from . import lease, mapping, passages
from .connection.engines import server_capabilities
from .connection.failures import client_exceptions
from .errors import ConfigError, IndexExists, IndexNotBridged, IndexNotFound
from .stamp import META_KEY, IndexStamp, ModelStamp


def create_index(client, name: str, model: ModelStamp, cfg: mapping.IndexConfig = mapping.IndexConfig()) -> IndexStamp:
    """Create index ``name`` for vectors stamped ``model``; returns the stamp written to ``_meta``.

    sparse_vector fields need Elasticsearch >= 8.11; on >= 8.19 the engine's own query pruning is turned
    off, since the bridge prunes (``engine_prune``)."""
    if cfg.field_type == "sparse_vector":
        caps = server_capabilities(client)
        if cfg.field_type not in caps["vector_field_types"]:
            raise ConfigError(f"{caps['engine']} {caps['version']} has no {cfg.field_type} field type")
        if caps["sparse_vector_default_prune"] and cfg.engine_prune is None:
            cfg = replace(cfg, engine_prune=False)
    body = mapping.build(cfg, model)
    _, _, transport_errors = client_exceptions()
    try:
        client.indices.create(index=name, body=body)
    except transport_errors as exc:
        if "resource_already_exists_exception" in str(getattr(exc, "error", "")) + str(getattr(exc, "info", "")):
            raise IndexExists(f"index {name!r} exists already", 400) from None
        raise
    if model.passages:
        try:
            passages.check_limit(name, nested_limit(client, name), model.encoder_options()["max_windows"])
        except ConfigError:  # an index template set it lower: the index cannot be used as asked
            client.indices.delete(index=name)
            raise
    return cfg.stamp(model)


def nested_limit(client, index: str) -> int:
    """The nested objects a document of ``index`` may hold (its setting, else the engine's default)."""
    response = client.indices.get_settings(index=index, name=passages.LIMIT_SETTING, include_defaults=True,
                                           flat_settings=True)
    values = [(body.get("settings") or {}).get(passages.LIMIT_SETTING) or
              (body.get("defaults") or {}).get(passages.LIMIT_SETTING) for body in response.values()]
    return min(int(v) for v in values if v is not None) if any(v is not None for v in values) else 10_000


def read_stamp(client, name: str) -> tuple[str, IndexStamp, str]:
    """(concrete index, stamp, vector field type) of index or alias ``name``.

    ``IndexNotFound`` when it does not exist, ``IndexNotBridged`` when splade-bridge did not create it
    or its vector field cannot hold SPLADE weights."""
    _, not_found, _ = client_exceptions()
    try:
        response = client.indices.get_mapping(index=name)
    except not_found:
        raise IndexNotFound(f"index {name!r} not found (no such index or alias on the cluster)") from None
    concrete, stamp = IndexStamp.from_mapping(response)
    return concrete, stamp, mapping.vector_field_type(response, stamp.vector_field)


class StampCache:
    """``read_stamp`` of names that may be aliases, each kept ``seconds`` before it is read again (``forget``
    drops one at once: its concrete index was gone). ``moves`` counts the names seen pointing elsewhere."""

    def __init__(self, client, seconds: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.client, self.seconds, self._clock = client, seconds, clock
        self._cache: dict[str, tuple[float, tuple[str, IndexStamp, str]]] = {}
        self.moves = 0

    def resolve(self, name: str) -> tuple[str, IndexStamp, str]:
        now = self._clock()
        cached = self._cache.get(name)
        if cached is not None and now - cached[0] < self.seconds:
            return cached[1]
        fresh = read_stamp(self.client, name)
        if cached is not None and cached[1][0] != fresh[0]:
            self.moves += 1
        self._cache[name] = (now, fresh)
        return fresh

    def forget(self, name: str) -> None:
        if name in self._cache:  # read again at the next resolve, still counted as a move if it moved
            at, value = self._cache[name]
            self._cache[name] = (at - self.seconds, value)


def stamp_of(client, name: str) -> IndexStamp | None:
    """The stamp of ``name``, or None when splade-bridge did not create it (or it is gone meanwhile)."""
    _, not_found, _ = client_exceptions()
    try:
        return IndexStamp.from_mapping(client.indices.get_mapping(index=name))[1]
    except (IndexNotBridged, *not_found):
        return None


def write_stamp(client, name: str, stamp: IndexStamp) -> None:
    """Replace the stamp of an existing index (the reindex checkpoint moves this way). An update of ``_meta``
    replaces the whole object, so the index's other ``_meta`` keys are sent back with it."""
    (_, body), = client.indices.get_mapping(index=name).items()
    meta = dict((body.get("mappings") or {}).get("_meta") or {})
    client.indices.put_mapping(index=name, body={"_meta": {**meta, META_KEY: stamp.to_meta()}})



def delete_index(client, name: str) -> None:
    """Delete the concrete index ``name`` (e.g. an abandoned reindex target, which ``status`` names). Refused
    (``ConfigError``) for an alias or a pattern, an index an alias points at, and a running reindex's target."""
    if any(c in name for c in "*,?") or client.indices.exists_alias(name=name):
        raise ConfigError(f"{name!r} is not one index name: name the concrete index to delete")
    if not client.indices.exists(index=name):
        raise IndexNotFound(f"index {name!r} does not exist")
    held = client.indices.get_alias(index=name)[name].get("aliases") or {}
    if held:
        raise ConfigError(f"alias {', '.join(sorted(held))} points at {name}: move it first (reindex or alias rollback)")
    running = lease.written(lease.records(client))
    if name in running:
        raise ConfigError(f"{name} is the target of a running reindex ({running[name]}): stop it first, or wait "
                          "until its lease expires")
    client.indices.delete(index=name)

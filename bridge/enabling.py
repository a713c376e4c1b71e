"""SPLADE on an index splade-bridge did not create: add the vector field, the content-hash field and the stamp
with one ``PUT _mapping`` per index, changing nothing else.

``plan`` is pure (mapping response in, checks and the mapping change out); ``enable`` reads and writes. An
update of ``_meta`` replaces the whole object on the engines (checked live), so the index's own ``_meta`` keys
are sent back beside the stamp.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from . import passages
from .actions import HASH_FIELD
from .connection.failures import client_exceptions
from .errors import ConfigError, IndexNotFound
from .mapping import IndexConfig
from .stamp import META_KEY, IndexStamp, ModelStamp

TEXT_TYPES = ("text", "match_only_text")


@dataclass(frozen=True)
class EnablePlan:
    """What ``enable`` changes: ``changes`` maps each index to its ``PUT _mapping`` body (empty when the index
    is already enabled for this model)."""

    stamp: IndexStamp
    changes: dict[str, dict]

    @property
    def changed(self) -> bool:
        return any(self.changes.values())

    def as_dict(self) -> dict:
        return {"indices": sorted(self.changes), "changed": self.changed, "mapping": self.changes,
                "stamp": self.stamp.to_meta()}


def field_mapping(properties: dict, path: str) -> dict | None:
    """The mapping of field ``path`` (dots walk into object fields), None when it does not exist; a field
    inside a ``nested`` field is refused (each nested object is a document of its own)."""
    node: dict = {"properties": properties}
    parts = path.split(".")
    for n, part in enumerate(parts):
        if node.get("type") == "nested":
            raise ConfigError(f"field {path!r} lies inside the nested field {'.'.join(parts[:n])!r}: "
                              "a text field must be a plain field of the document")
        node = (node.get("properties") or {}).get(part)
        if node is None:
            return None
    return node


def plan(mappings: dict, closed: set[str], cfg: IndexConfig, model: ModelStamp) -> EnablePlan:
    """The mapping change for each index of a ``GET <name>/_mapping`` response; ``ConfigError`` naming the
    index and field when one cannot take SPLADE vectors as asked."""
    stamp = replace(cfg.stamp(model), enabled=True)
    changes = {}
    for index, body in sorted(mappings.items()):
        if index in closed:
            raise ConfigError(f"index {index!r} is closed: open it first")
        current = body.get("mappings") or {}
        properties = current.get("properties") or {}
        source = current.get("_source") or {}
        if source.get("enabled") is False or source.get("includes") or source.get("excludes"):
            raise ConfigError(f"index {index!r} does not keep every field in _source: a partial update rebuilds the "
                              "document from _source and would drop the others")
        for name in cfg.text_fields:
            found = field_mapping(properties, name)
            if found is None:
                raise ConfigError(f"text field {name!r} does not exist in index {index!r}")
            if found.get("type") not in TEXT_TYPES:
                raise ConfigError(f"field {name!r} of index {index!r} is {found.get('type') or 'an object'}, "
                                  "not text: only text fields can be encoded")
        changes[index] = _change(index, current, properties, cfg, stamp)
    return EnablePlan(stamp=stamp, changes=changes)


def _change(index: str, current: dict, properties: dict, cfg: IndexConfig, stamp: IndexStamp) -> dict:
    meta = dict(current.get("_meta") or {})
    existing = meta.get(META_KEY)
    vector = {"type": cfg.field_type}
    wanted = {cfg.vector_field: passages.mapping(vector) if stamp.model.passages else vector,
              HASH_FIELD: {"type": "keyword"}}
    if existing is not None:  # enabled before: the same options change nothing, others need a reindex
        stamped = IndexStamp.from_meta(existing)
        if stamped.content_key() != stamp.content_key() or stamped.text_fields != stamp.text_fields:
            raise ConfigError(f"index {index!r} already holds SPLADE vectors made otherwise (model "
                              f"{stamped.model.model!r}, field {stamped.vector_field!r}); to change how they are "
                              "made, reindex it into a new index")
    for name, spec in wanted.items():
        have = properties.get(name)
        if have is not None and have.get("type") != spec["type"]:
            raise ConfigError(f"index {index!r} has a field {name!r} of type {have.get('type') or 'object'}; "
                              f"splade-bridge needs it as {spec['type']} (choose another vector field name)")
    if existing is not None:
        return {}
    add = {name: spec for name, spec in wanted.items() if name not in properties}
    return {"properties": add, "_meta": {**meta, META_KEY: stamp.to_meta()}}


def enable(client, name: str, model: ModelStamp, cfg: IndexConfig, dry_run: bool = False) -> EnablePlan:
    """Enable SPLADE on every index behind ``name`` (an index or alias); with ``dry_run`` only the plan."""
    _, not_found, _ = client_exceptions()
    try:
        mappings = client.indices.get_mapping(index=name)
        rows = client.cat.indices(index=name, format="json", h="index,status", expand_wildcards="all")
    except not_found:
        raise IndexNotFound(f"index {name!r} not found (no such index or alias on the cluster)") from None
    closed = {row["index"] for row in rows if row.get("status") == "close"}
    p = plan(mappings, closed, cfg, model)
    if model.passages:
        from .indices import nested_limit
        for index in p.changes:
            passages.check_limit(index, nested_limit(client, index), model.encoder_options()["max_windows"])
    if not dry_run:
        for index, body in p.changes.items():
            if body:
                client.indices.put_mapping(index=index, body=body)
    return p

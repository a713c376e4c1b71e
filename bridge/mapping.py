"""Index bodies from ``mappings/*.json``, stamped with how their vectors were made.

The ``_meta.splade_bridge`` stamp records the model (name and weights hash), pooling, pruning,
quantization and key codec; the query side reads it back to refuse mismatched encoders and to undo
integer quantization scales.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from importlib import resources

from .config import PruneConfig, QuantConfig
from .sparse import KeyCodec

META_KEY = "splade_bridge"
VECTOR_FIELD_TYPES = ("rank_features", "sparse_vector")
META_VERSION = 1


@dataclass(frozen=True)
class IndexConfig:
    vector_field: str = "splade"
    text_fields: tuple[str, ...] = ("title", "text")
    exclude_vector_from_source: bool = False
    shards: int = 1
    replicas: int | None = None
    prune: PruneConfig = field(default_factory=PruneConfig)
    quant: QuantConfig = field(default_factory=QuantConfig)
    template: str = "splade"
    field_type: str = "rank_features"        # or "sparse_vector" (Elasticsearch >= 8.11)
    engine_prune: bool | None = None         # sparse_vector only: index_options.prune (ES >= 8.19 defaults on)

    def __post_init__(self) -> None:
        if not self.vector_field or "." in self.vector_field:
            raise ValueError(f"vector_field must be a plain field name, got {self.vector_field!r}")
        if not self.text_fields:
            raise ValueError("at least one text field is needed")
        if self.vector_field in self.text_fields:
            raise ValueError("vector_field must differ from the text fields")
        if self.field_type not in ("rank_features", "sparse_vector"):
            raise ValueError(f"field_type must be rank_features or sparse_vector, got {self.field_type!r}")
        if self.engine_prune is not None and self.field_type != "sparse_vector":
            raise ValueError("engine_prune applies to sparse_vector fields only")
        if self.shards < 1 or (self.replicas is not None and self.replicas < 0):
            raise ValueError("shards must be >= 1 and replicas >= 0")


def load_template(name: str) -> dict:
    text = resources.files("bridge.mappings").joinpath(f"{name}.json").read_text()
    return json.loads(text)


def build(cfg: IndexConfig, stamp: dict) -> dict:
    """The body for ``indices.create``: template filled with field names, settings and the stamp."""
    body = copy.deepcopy(load_template(cfg.template))
    props = body["mappings"]["properties"]
    text_mapping = props.pop("__TEXT_FIELD__")
    props[cfg.vector_field] = props.pop("__VECTOR_FIELD__")
    if cfg.field_type == "sparse_vector":
        props[cfg.vector_field] = {"type": "sparse_vector"}
        if cfg.engine_prune is not None:  # don't let the engine prune what we already pruned, unknowingly
            props[cfg.vector_field]["index_options"] = {"prune": cfg.engine_prune}
    for name in cfg.text_fields:
        props[name] = copy.deepcopy(text_mapping)
    if cfg.exclude_vector_from_source:
        body["mappings"]["_source"] = {"excludes": [cfg.vector_field]}
    index_settings = body.setdefault("settings", {}).setdefault("index", {})
    index_settings["number_of_shards"] = cfg.shards
    if cfg.replicas is not None:
        index_settings["number_of_replicas"] = cfg.replicas
    body["mappings"]["_meta"][META_KEY] = {
        "meta_version": META_VERSION,
        "vector_field": cfg.vector_field,
        "text_fields": list(cfg.text_fields),
        "model": dict(stamp),
        "pruning": cfg.prune.as_dict(),
        "quantization": cfg.quant.as_dict(),
        "key_codec": KeyCodec.name,
        "source_excludes_vector": cfg.exclude_vector_from_source,
    }
    return body


def read_meta(mapping_response: dict) -> tuple[str, dict]:
    """(concrete index name, stamp) from a ``GET <index>/_mapping`` response for one index or alias."""
    if len(mapping_response) != 1:
        raise ValueError(f"expected one index behind the name, found {sorted(mapping_response)}")
    (index, body), = mapping_response.items()
    meta = (body.get("mappings") or {}).get("_meta", {}).get(META_KEY)
    if meta is None:
        raise ValueError(f"index {index!r} was not created by splade-bridge (no _meta.{META_KEY} stamp)")
    return index, meta


def stamp_of(client, index: str) -> dict:
    """The stamp of ``index``, or ``{}`` when splade-bridge did not create it."""
    try:
        return read_meta(client.indices.get_mapping(index=index))[1]
    except ValueError:
        return {}


def vector_field_type(mapping_response: dict, field_name: str) -> str:
    """The vector field's type; a ValueError when it cannot hold SPLADE weights."""
    (index, body), = mapping_response.items()
    field_type = ((body.get("mappings") or {}).get("properties", {}).get(field_name) or {}).get("type")
    if field_type not in VECTOR_FIELD_TYPES:
        raise ValueError(f"field {field_name!r} of index {index!r} is {field_type!r}, not rank_features: "
                         "SPLADE weights cannot be stored or scored there")
    return field_type

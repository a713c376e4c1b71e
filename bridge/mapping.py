"""Index bodies from ``mappings/*.json`` (pure): the template filled with field names and settings, and
the ``IndexStamp`` recording how the vectors were made written into ``_meta``."""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from importlib import resources

from . import passages
from .config import DEFAULT_DOC_TOP_K, PruneConfig, QuantConfig
from .errors import ConfigError, IndexNotBridged
from .stamp import META_KEY, IndexStamp, ModelStamp

VECTOR_FIELD_TYPES = ("rank_features", "sparse_vector")


@dataclass(frozen=True)
class IndexConfig:
    vector_field: str = "splade"
    text_fields: tuple[str, ...] = ("title", "text")
    exclude_vector_from_source: bool = False
    shards: int = 1
    replicas: int | None = None
    prune: PruneConfig = field(default_factory=lambda: PruneConfig(top_k=DEFAULT_DOC_TOP_K))
    quant: QuantConfig = field(default_factory=QuantConfig)
    template: str = "splade"
    field_type: str = "rank_features"        # or "sparse_vector" (Elasticsearch >= 8.11)
    engine_prune: bool | None = None         # sparse_vector only: index_options.prune (ES >= 8.19 defaults on)

    def __post_init__(self) -> None:
        if not self.vector_field or "." in self.vector_field:
            raise ConfigError(f"vector_field must be a plain field name, got {self.vector_field!r}")
        if not self.text_fields:
            raise ConfigError("at least one text field is needed")
        if self.vector_field in self.text_fields:
            raise ConfigError("vector_field must differ from the text fields")
        if self.field_type not in VECTOR_FIELD_TYPES:
            raise ConfigError(f"field_type must be rank_features or sparse_vector, got {self.field_type!r}")
        if self.engine_prune is not None and self.field_type != "sparse_vector":
            raise ConfigError("engine_prune applies to sparse_vector fields only")
        if self.shards < 1 or (self.replicas is not None and self.replicas < 0):
            raise ConfigError("shards must be >= 1 and replicas >= 0")

    def stamp(self, model: ModelStamp) -> IndexStamp:
        return IndexStamp(model=model, vector_field=self.vector_field, text_fields=tuple(self.text_fields),
                          pruning=self.prune, quantization=self.quant,
                          source_excludes_vector=self.exclude_vector_from_source)


def load_template(name: str) -> dict:
    text = resources.files("bridge.mappings").joinpath(f"{name}.json").read_text()
    return json.loads(text)


def build(cfg: IndexConfig, model: ModelStamp) -> dict:
    """The body for ``indices.create``: template filled with field names, settings and the stamp."""
    body = copy.deepcopy(load_template(cfg.template))
    props = body["mappings"]["properties"]
    text_mapping = props.pop("__TEXT_FIELD__")
    props[cfg.vector_field] = props.pop("__VECTOR_FIELD__")
    if cfg.field_type == "sparse_vector":
        props[cfg.vector_field] = {"type": "sparse_vector"}
        if cfg.engine_prune is not None:  # don't let the engine prune what we already pruned, unknowingly
            props[cfg.vector_field]["index_options"] = {"prune": cfg.engine_prune}
    if model.passages:
        props[cfg.vector_field] = passages.mapping(props[cfg.vector_field])
    for name in cfg.text_fields:
        props[name] = copy.deepcopy(text_mapping)
    if cfg.exclude_vector_from_source:
        body["mappings"]["_source"] = {"excludes": [cfg.vector_field]}
    index_settings = body.setdefault("settings", {}).setdefault("index", {})
    index_settings["number_of_shards"] = cfg.shards
    if cfg.replicas is not None:
        index_settings["number_of_replicas"] = cfg.replicas
    body["mappings"]["_meta"][META_KEY] = cfg.stamp(model).to_meta()
    return body


def vector_field_type(mapping_response: dict, field_name: str) -> str:
    """The vector field's type; ``IndexNotBridged`` when it cannot hold SPLADE weights."""
    (index, body), = mapping_response.items()
    field = (body.get("mappings") or {}).get("properties", {}).get(field_name) or {}
    if field.get("type") == "nested":  # passage mode: the weights inside each passage
        field = (field.get("properties") or {}).get(passages.WEIGHTS) or {}
    field_type = field.get("type")
    if field_type not in VECTOR_FIELD_TYPES:
        raise IndexNotBridged(f"field {field_name!r} of index {index!r} is {field_type!r}, not rank_features: "
                              "SPLADE weights cannot be stored or scored there")
    return field_type

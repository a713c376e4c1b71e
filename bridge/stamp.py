"""The index stamp: how an index's vectors were made, kept in its mapping's ``_meta.splade_bridge``.

``ModelStamp`` is what an encoder contributes (model name and weights hash, pooling, long-document
mode, precision and the backend that ran it); ``IndexStamp`` adds the vector field, text fields, pruning,
quantization and key codec, and, while a reindex is under way, its checkpoint (``ReindexState``).
``IndexStamp.from_mapping`` is the one reader and ``IndexStamp.to_meta`` the one writer of ``_meta``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, fields

from .config import PruneConfig, QuantConfig
from .errors import ConfigError, IndexNotBridged, ModelMismatch, hinted
from .sparse import KeyCodec

META_KEY = "splade_bridge"
META_VERSION = 1
# what must agree between an index and a query encoder for scores to mean anything
# (and, below fp32, the backend: its bf16 or int8 arithmetic is its own)
MATCHING_KEYS = ("revision", "query_revision", "pooling", "activation", "precision")


@dataclass(frozen=True)
class ModelStamp:
    model: str
    revision: str
    query_model: str | None = None
    query_revision: str | None = None
    pooling: str = "max"
    activation: str = "log1p_relu"
    # "window:<max>:<overlap>:<windows>", "passages:<max>:<overlap>:<windows>" or "truncate:<max>"
    long_documents: str | None = None
    precision: str = "fp32"  # indices stamped before precisions existed are fp32
    backend: str | None = None  # which one ran: every backend's fp32 agrees within 1e-4; below fp32 they differ

    @property
    def passages(self) -> bool:
        """Long documents stored as nested passages, scored by their best one (``passages.py``)."""
        return (self.long_documents or "").startswith("passages:")

    def as_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("long_documents", "backend"):  # indices stamped before these existed
            if out[name] is None:
                del out[name]
        return out

    def vector_key(self) -> dict:
        """What of this stamp decides the vectors: at fp32 the backend does not (nor is precision written, so
        content hashes of indices stamped before precisions existed stay as they were)."""
        out = self.as_dict()
        if self.precision == "fp32":
            out.pop("precision")
            out.pop("backend", None)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> "ModelStamp":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def query_key(self) -> tuple:
        """What two stamps share when one encoder expands queries for both: the model reference and the keys
        that must match."""
        return (self.model, *(getattr(self, k) for k in MATCHING_KEYS))

    def mismatches(self, other: "ModelStamp") -> list[str]:
        """What differs between this (an index's) stamp and ``other`` (an encoder's)."""
        keys = MATCHING_KEYS + (("backend",) if self.precision != "fp32" else ())
        return [f"{k}: index {getattr(self, k)!r} vs encoder {getattr(other, k)!r}"
                for k in keys if getattr(self, k) != getattr(other, k)]

    def encoder_options(self) -> dict:
        """``EncoderConfig`` options that reproduce this stamp's pooling, precision (and below fp32, backend)
        and long-document mode."""
        out = {"pooling": self.pooling, "activation": self.activation, "precision": self.precision,
               **({"backend": self.backend} if self.precision != "fp32" and self.backend else {})}
        if not self.long_documents:
            return out
        kind, *numbers = self.long_documents.split(":")
        if kind == "truncate":
            return {**out, "long_documents": "truncate"}
        if kind in ("window", "passages") and len(numbers) == 3:
            return {**out, "long_documents": kind, "window_overlap": int(numbers[1]),
                    "max_windows": int(numbers[2])}
        raise ConfigError(f"unknown long_documents stamp {self.long_documents!r} (written by a newer splade-bridge?)")


@dataclass(frozen=True)
class ReindexState:
    """The checkpoint of a reindex into this index: ``copying`` until verified, then ``done``."""

    state: str
    source: str
    source_indices: tuple[str, ...]
    alias: str
    previous: tuple[str, ...] = ()
    catchup: dict | None = None  # once done: passes, documents caught up, deletions applied, write-block seconds

    def as_dict(self) -> dict:
        return {"state": self.state, "source": self.source, "source_indices": list(self.source_indices),
                "alias": self.alias, "previous": list(self.previous),
                **({"catchup": self.catchup} if self.catchup else {})}

    @classmethod
    def from_dict(cls, data: dict) -> "ReindexState":
        return cls(state=data["state"], source=data.get("source", ""),
                   source_indices=tuple(data.get("source_indices", ())), alias=data.get("alias", ""),
                   previous=tuple(data.get("previous", ())), catchup=data.get("catchup"))


@dataclass(frozen=True)
class IndexStamp:
    model: ModelStamp
    vector_field: str = "splade"
    text_fields: tuple[str, ...] = ("title", "text")
    pruning: PruneConfig = field(default_factory=PruneConfig)
    quantization: QuantConfig = field(default_factory=QuantConfig)
    key_codec: str = KeyCodec.name
    source_excludes_vector: bool = False
    reindex: ReindexState | None = None
    # added to an index splade-bridge did not create (``enable``): its other fields belong to its own writers,
    # so the bridge writes only the vector and the hash, by conditional partial updates
    enabled: bool = False
    # set on a reindex's source just before the alias moves: the target's model, which query services load ahead
    next_model: ModelStamp | None = None

    @property
    def scale(self) -> float:
        """What stored weights are multiplied by (integer quantization); 1.0 for float."""
        return float(self.quantization.as_dict()["scale"])

    def to_meta(self) -> dict:
        out = {"meta_version": META_VERSION, "vector_field": self.vector_field,
               "text_fields": list(self.text_fields), "model": self.model.as_dict(),
               "pruning": self.pruning.as_dict(), "quantization": self.quantization.as_dict(),
               "key_codec": self.key_codec, "source_excludes_vector": self.source_excludes_vector}
        if self.reindex is not None:
            out["reindex"] = self.reindex.as_dict()
        if self.enabled:
            out["enabled"] = True
        if self.next_model is not None:
            out["next_model"] = self.next_model.as_dict()
        return out

    @classmethod
    def from_meta(cls, meta: dict) -> "IndexStamp":
        if meta.get("meta_version", META_VERSION) > META_VERSION:
            raise ConfigError(f"index stamp version {meta['meta_version']} is newer than this splade-bridge")
        try:
            return cls._from_meta(meta)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"unreadable splade-bridge stamp ({type(exc).__name__}: {exc})") from None

    @classmethod
    def _from_meta(cls, meta: dict) -> "IndexStamp":
        reindex = meta.get("reindex")
        return cls(model=ModelStamp.from_dict(meta.get("model", {})), vector_field=meta.get("vector_field", "splade"),
                   text_fields=tuple(meta.get("text_fields", ("title", "text"))),
                   pruning=PruneConfig(**meta.get("pruning", {})),
                   quantization=QuantConfig.from_meta(meta.get("quantization", {})),
                   key_codec=meta.get("key_codec", KeyCodec.name),
                   source_excludes_vector=bool(meta.get("source_excludes_vector", False)),
                   reindex=ReindexState.from_dict(reindex) if reindex else None,
                   enabled=bool(meta.get("enabled", False)),
                   next_model=ModelStamp.from_dict(meta["next_model"]) if meta.get("next_model") else None)

    @classmethod
    def from_mapping(cls, mapping_response: dict) -> tuple[str, "IndexStamp"]:
        """(concrete index name, stamp) from a ``GET <index>/_mapping`` response for one index or alias."""
        if len(mapping_response) != 1:
            raise ConfigError(f"expected one index behind the name, found {sorted(mapping_response)}")
        (index, body), = mapping_response.items()
        meta = (body.get("mappings") or {}).get("_meta", {}).get(META_KEY)
        if meta is None:
            raise IndexNotBridged(f"index {index!r} was not created by splade-bridge (no _meta.{META_KEY} stamp)")
        return index, cls.from_meta(meta)

    def content_key(self) -> str:
        """What, besides the text, decides a document's stored vector (part of its content hash)."""
        meta = {**self.to_meta(), "model": self.model.vector_key()}
        return json.dumps({k: meta.get(k) for k in ("model", "pruning", "quantization", "key_codec", "vector_field")},
                          sort_keys=True)

    def check_encoder(self, index: str, encoder_stamp: ModelStamp) -> None:
        """``ModelMismatch`` unless ``encoder_stamp`` produces vectors comparable with this index's."""
        diffs = self.model.mismatches(encoder_stamp)
        if diffs:
            raise hinted(ModelMismatch(
                f"index {index!r} was built with model {self.model.model!r}, the query encoder is "
                f"{encoder_stamp.model!r} ({'; '.join(diffs)}); scores would be meaningless. "
                "Use the index's model"), "allow_model_mismatch")

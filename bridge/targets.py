"""A reindex's target: the source's layout for it, its body (the bridge's template, or an enabled source's own
mapping and settings), its creation with the checkpoint in its stamp, the announcement of its model to query
services, and the check of sample queries against exact scoring before the alias moves."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from . import mapping, passages
from .errors import ReindexError
from .indices import stamp_of, write_stamp
from .searcher import Searcher, SearchOptions
from .stamp import META_KEY, IndexStamp, ModelStamp, ReindexState


@dataclass(frozen=True)
class ReindexPlan:
    source: str
    source_indices: tuple[str, ...]
    alias: str
    target: str
    resume: bool
    previous: tuple[str, ...]          # indices behind the alias now
    text_fields: tuple[str, ...]
    replicas: int
    model: ModelStamp
    delete_old: bool = False
    layout: mapping.IndexConfig = field(default_factory=mapping.IndexConfig)  # the source's, for the target
    enabled: bool = False  # an enabled source: the target gets its whole mapping and settings, its fields included

    def as_dict(self) -> dict:
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}
        out["model"] = self.model.as_dict()
        out["layout"] = {**asdict(self.layout), "text_fields": list(self.layout.text_fields),
                         "prune": self.layout.prune.as_dict(), "quant": self.layout.quant.as_dict()}
        return out


def source_layout(client, index: str, stamp: IndexStamp | None, settings: dict,
                  text_fields: tuple[str, ...]) -> mapping.IndexConfig:
    """The source index's layout for the target: shards, vector field and its type, pruning, quantization and
    whether ``_source`` keeps the vector (replicas stay 0 while building; ``replicas`` restores them)."""
    shards = int(settings.get("number_of_shards", 1))
    if stamp is None:
        return mapping.IndexConfig(text_fields=text_fields, shards=shards, replicas=0)
    properties = client.indices.get_mapping(index=index)[index]["mappings"].get("properties", {})
    field = properties.get(stamp.vector_field, {})
    if field.get("type") == "nested":  # passage mode: the weights' type, inside each passage
        field = (field.get("properties") or {}).get(passages.WEIGHTS, {})
    field_type = field.get("type", "rank_features")
    return mapping.IndexConfig(vector_field=stamp.vector_field, text_fields=text_fields,
                               exclude_vector_from_source=stamp.source_excludes_vector, shards=shards, replicas=0,
                               prune=stamp.pruning, quant=stamp.quantization, field_type=field_type)


# index settings the engine sets itself (or that belong to one index only): never copied to a target
_OWN_SETTINGS = ("uuid", "creation_date", "provided_name", "version", "routing", "resize", "blocks",
                 "verified_before_close", "history_uuid", "creation_date_string", "replication")


def copied_body(client, index: str) -> dict:
    """An enabled source's whole mapping and settings (its own fields, analyzers and ``_meta`` keys), for the
    target; replicas 0 while building (restored from the plan)."""
    mappings = client.indices.get_mapping(index=index)[index]["mappings"]
    settings = client.indices.get_settings(index=index)[index]["settings"]["index"]
    kept = {k: v for k, v in settings.items() if k not in _OWN_SETTINGS}
    return {"settings": {"index": {**kept, "number_of_replicas": 0}},
            "mappings": {**mappings, "_meta": dict(mappings.get("_meta") or {})}}


def create_target(client, p: ReindexPlan, encoder) -> IndexStamp:
    cfg = p.layout
    if p.enabled:  # the user's mapping; the vector field as the target's long-document mode needs it
        body = copied_body(client, p.source_indices[0])
        properties = body["mappings"].setdefault("properties", {})
        if (properties.get(cfg.vector_field, {}).get("type") == "nested") != encoder.stamp.passages:
            vector = {"type": cfg.field_type}
            properties[cfg.vector_field] = passages.mapping(vector) if encoder.stamp.passages else vector
    else:
        body = mapping.build(cfg, encoder.stamp)
    body["settings"]["index"]["refresh_interval"] = "-1"
    stamp = replace(cfg.stamp(encoder.stamp), reindex=ReindexState("copying", p.source, p.source_indices, p.alias,
                                                                   p.previous), enabled=p.enabled)
    body["mappings"]["_meta"][META_KEY] = stamp.to_meta()
    client.indices.create(index=p.target, body=body)
    return stamp


def announce_model(client, indices: tuple[str, ...], model: ModelStamp) -> None:
    """Record the target's model in each stamped source index (``next_model``): query services that serve the
    alias load it while the copy runs, so they have it when the alias moves."""
    for index in indices:
        stamp = stamp_of(client, index)
        if stamp is not None and stamp.next_model != model:
            write_stamp(client, index, replace(stamp, next_model=model))


def verify(client, encoder, p: ReindexPlan, queries: list[str]) -> int:
    """Each sample query's top-10 from the new index equals exact scoring of its stored vectors; returns the
    queries verified. (That the target holds exactly the source's documents, each with its current text's hash,
    is checked by the catch-up: ``catchup.differences``.)"""
    from .evaluation import StoredVectors

    client.indices.refresh(index=p.target)
    searcher = Searcher(client, encoder, p.target)
    vectors = StoredVectors(client, p.target, searcher.field, searcher.scale, searcher.stamp.model.passages)
    for text in queries:
        _, used, _ = searcher.build(text)
        exact = dict(zip(vectors.ids, vectors.scores(used).tolist()))
        ranked = sorted(exact.values(), reverse=True)[:10]
        hits = searcher.search(text, SearchOptions(size=10, source=False))
        for rank, hit in enumerate(hits):
            # the hit at each rank scores (exactly) what exact scoring's doc at that rank does, within
            # the 9-bit precision Lucene keeps: same document, or a near-tie swapped with it
            if abs(exact.get(hit.id, 0.0) - ranked[rank]) > 0.005 * ranked[rank]:
                raise ReindexError(f"verification failed for query {text!r} at rank {rank + 1}: {hit.id} "
                                   f"scores {exact.get(hit.id, 0.0):.4f} exactly, rank {rank + 1} should score "
                                   f"{ranked[rank]:.4f}; the alias was not moved")
    return len(queries)



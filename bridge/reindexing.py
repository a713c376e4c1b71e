"""Zero-downtime reindex behind an alias: read the source, re-encode from text, verify, swap atomically.

The target is a new versioned index ``<alias>-<model-slug>-<UTC timestamp>`` created with
``refresh_interval: -1`` and no replicas. Its ``_meta.splade_bridge.reindex`` block is the checkpoint:
``state`` is ``copying`` until verification passes, so a rerun after a crash finds the unfinished
target and continues into it; documents already stored with the same content hash are skipped
(``indexing.stored_unchanged``), so finished batches are never re-encoded.
"""
from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable, Iterator


from . import indexing, mapping, scan
from .connection.failures import describe
from .errors import ConfigError, IngestAborted, ReindexError
from .indices import stamp_of, write_stamp
from .searcher import Searcher, SearchOptions
from .stamp import META_KEY, IndexStamp, ModelStamp, ReindexState

log = logging.getLogger(__name__)


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


@dataclass
class ReindexSummary:
    plan: dict
    ingest: dict = field(default_factory=dict)
    source_count: int = 0
    target_count: int = 0
    verified_queries: int = 0
    swapped: bool = False
    deleted: list[str] = field(default_factory=list)


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "model"


def alias_indices(client, alias: str) -> list[str]:
    if not client.indices.exists_alias(name=alias):
        return []
    return sorted(client.indices.get_alias(name=alias))


def resolve(client, name: str) -> list[str]:
    """Concrete indices behind an index name or alias."""
    return sorted(client.indices.get(index=name))


def find_resumable(client, alias: str, source_indices: tuple[str, ...], model: ModelStamp) -> str | None:
    """An unfinished target of an earlier run for the same alias, source and model."""
    candidates = client.indices.get(index=f"{alias}-*", ignore_unavailable=True, allow_no_indices=True)
    for name in sorted(candidates, reverse=True):
        stamp = stamp_of(client, name)
        state = stamp.reindex if stamp else None
        if (state is not None and state.state == "copying" and state.source_indices == source_indices
                and stamp.model.revision == model.revision):
            return name
    return None


def plan(client, source: str, alias: str, encoder, text_fields: tuple[str, ...] | None = None,
         delete_old: bool = False, now: datetime | None = None) -> ReindexPlan:
    if client.indices.exists(index=alias) and not client.indices.exists_alias(name=alias):
        raise ReindexError(f"{alias!r} is a concrete index, not an alias: choose another --alias name "
                           "(an alias cannot share an index's name)")
    source_indices = tuple(resolve(client, source))
    if not source_indices:
        raise ReindexError(f"source {source!r} matches no index")
    source_stamp = stamp_of(client, source_indices[0])
    fields = tuple(text_fields or (source_stamp.text_fields if source_stamp else ("title", "text")))
    settings = client.indices.get_settings(index=source_indices[0])[source_indices[0]]["settings"]["index"]
    resume = find_resumable(client, alias, source_indices, encoder.stamp)
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dt%H%M%S")
    target = resume or f"{alias}-{slug(encoder.stamp.model)}-{stamp}"
    return ReindexPlan(source=source, source_indices=source_indices, alias=alias, target=target,
                       resume=resume is not None, previous=tuple(alias_indices(client, alias)),
                       text_fields=fields, replicas=int(settings.get("number_of_replicas", 1)),
                       model=encoder.stamp, delete_old=delete_old,
                       layout=source_layout(client, source_indices[0], source_stamp, settings, fields),
                       enabled=bool(source_stamp and source_stamp.enabled))


def source_layout(client, index: str, stamp: IndexStamp | None, settings: dict,
                  text_fields: tuple[str, ...]) -> mapping.IndexConfig:
    """The source index's layout for the target: shards, vector field and its type, pruning, quantization and
    whether ``_source`` keeps the vector (replicas stay 0 while building; ``replicas`` restores them)."""
    shards = int(settings.get("number_of_shards", 1))
    if stamp is None:
        return mapping.IndexConfig(text_fields=text_fields, shards=shards, replicas=0)
    properties = client.indices.get_mapping(index=index)[index]["mappings"].get("properties", {})
    field_type = properties.get(stamp.vector_field, {}).get("type", "rank_features")
    return mapping.IndexConfig(vector_field=stamp.vector_field, text_fields=text_fields,
                               exclude_vector_from_source=stamp.source_excludes_vector, shards=shards, replicas=0,
                               prune=stamp.pruning, quant=stamp.quantization, field_type=field_type)


def read_source(client, indices: tuple[str, ...], page: int = 500) -> Iterator[dict]:
    """Every document of the source as ``{"_id": ..., **_source}`` (``scan.read_documents``)."""
    for index in indices:
        for doc in scan.read_documents(client, index, page=page):
            yield {**doc.source, "_id": doc.id}


def _strip_vectors(docs: Iterator[dict], drop: tuple[str, ...]) -> Iterator[dict]:
    for d in docs:
        yield {k: v for k, v in d.items() if k not in drop}


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
    body = copied_body(client, p.source_indices[0]) if p.enabled else mapping.build(cfg, encoder.stamp)
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


def verify(client, encoder, p: ReindexPlan, queries: list[str]) -> tuple[int, int]:
    """Counts equal, and each sample query's top-10 from the new index equals exact scoring.
    Returns (documents, queries verified)."""
    from .evaluation import StoredVectors

    client.indices.refresh(index=p.target)
    source_count = sum(client.count(index=i)["count"] for i in p.source_indices)
    target_count = client.count(index=p.target)["count"]
    if source_count != target_count:
        raise ReindexError(f"verification failed: source has {source_count} documents, {p.target} has "
                           f"{target_count}; the alias was not moved")
    searcher = Searcher(client, encoder, p.target)
    vectors = StoredVectors(client, p.target, searcher.field, searcher.scale)
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
    return source_count, len(queries)


def swap_alias(client, alias: str, new: str, old: tuple[str, ...]) -> None:
    """Point ``alias`` at ``new`` only, in one atomic ``_aliases`` call."""
    actions = [{"remove": {"index": i, "alias": alias}} for i in old if i != new]
    actions.append({"add": {"index": new, "alias": alias}})
    client.indices.update_aliases(body={"actions": actions})


def run(client, encoder, p: ReindexPlan, cfg: indexing.IngestConfig = indexing.IngestConfig(),
        sample_queries: int = 5, progress: Callable[[int], None] | None = None,
        confirm_delete: Callable[[list[str]], bool] = lambda names: True) -> ReindexSummary:
    summary = ReindexSummary(plan=p.as_dict())
    if p.resume:
        log.info("resuming into %s", p.target)
        stamp = stamp_of(client, p.target)
        if stamp is None or stamp.reindex is None:
            raise ConfigError(f"{p.target} has no reindex checkpoint to resume from")
    else:
        stamp = create_target(client, p, encoder)
    announce_model(client, p.source_indices, encoder.stamp)
    vector_fields = {getattr(stamp_of(client, i), "vector_field", "splade") for i in p.source_indices}
    drop = tuple(vector_fields | {"content_hash"})
    docs = _strip_vectors(read_source(client, p.source_indices), drop)
    queries: list[str] = []

    def sampled(stream: Iterator[dict]) -> Iterator[dict]:
        for d in stream:
            if len(queries) < sample_queries and isinstance(d.get(p.text_fields[0]), str) and d[p.text_fields[0]]:
                queries.append(d[p.text_fields[0]][:200])
            yield d

    icfg = indexing.IngestConfig(**{**cfg.__dict__, "text_fields": p.text_fields, "skip_unchanged": True})
    try:
        result = indexing.run(client, encoder, p.target, sampled(docs), stamp, icfg, progress=progress)
    except IngestAborted as exc:
        raise ReindexError(f"{describe(exc.cause)}; {exc.summary.indexed} more documents are in {p.target}; "
                           "the alias was not moved, rerun the same command to resume") from exc
    summary.ingest = result.as_dict()
    if result.failed:
        raise ReindexError(f"{result.failed} documents could not be indexed into {p.target} (first: "
                           f"{result.errors[:1]}); the alias was not moved, rerun to resume")
    summary.source_count, summary.verified_queries = verify(client, encoder, p, queries)
    client.indices.put_settings(index=p.target, body={"index": {"refresh_interval": None,
                                                                 "number_of_replicas": p.replicas}})
    write_stamp(client, p.target, replace(stamp, reindex=replace(stamp.reindex, state="done")))
    swap_alias(client, p.alias, p.target, tuple(alias_indices(client, p.alias)))
    summary.swapped = True
    summary.target_count = client.count(index=p.alias)["count"]
    old = [i for i in p.previous if i != p.target]
    if p.delete_old and old and confirm_delete(old):
        client.indices.delete(index=",".join(old))
        summary.deleted = old
    return summary


def rollback(client, alias: str) -> tuple[str, str]:
    """Point ``alias`` back at the index it named before the last reindex; returns (from, to)."""
    current = alias_indices(client, alias)
    if len(current) != 1:
        raise ReindexError(f"alias {alias!r} points at {current or 'nothing'}; expected one index")
    stamp = stamp_of(client, current[0])
    previous = list(stamp.reindex.previous) if stamp and stamp.reindex else []
    previous = [i for i in previous if client.indices.exists(index=i)]
    if not previous:
        raise ReindexError(f"{current[0]} records no earlier index for {alias!r} that still exists")
    client.indices.update_aliases(body={"actions": [{"remove": {"index": current[0], "alias": alias}}]
                                        + [{"add": {"index": i, "alias": alias}} for i in previous]})
    return current[0], ",".join(previous)

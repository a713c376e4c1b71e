"""Copying a reindex's source into its target: the copy's ingest settings, the source read slice by slice with
its vectors dropped (they are re-made), and the copy itself — encoded through the ingest pipeline, a failure
raised as ``ReindexError`` naming what is left to resume — one slice at a time under its lease."""
from __future__ import annotations

from typing import Iterator

from . import indexing, lease, scan
from .actions import HASH_FIELD
from .connection.failures import describe
from .errors import IngestAborted, ReindexError
from .indices import stamp_of
from .scan import Slice
from .targets import ReindexPlan
from .types import Stored


def read_source(client, indices: tuple[str, ...], part: Slice = Slice(), page: int = 500) -> Iterator[Stored]:
    """Every stored document of slice ``part`` of the source (``scan.read_documents``)."""
    for index in indices:
        yield from scan.read_documents(client, index, part=part, page=page)


def settings(client, p: ReindexPlan, cfg) -> tuple[indexing.IngestConfig, tuple[str, ...]]:
    """The copy's ingest settings and the fields it drops from the source (vectors and hashes, re-made)."""
    vector_fields = {getattr(stamp_of(client, i), "vector_field", "splade") for i in p.source_indices}
    icfg = indexing.IngestConfig(**{**cfg.__dict__, "text_fields": p.text_fields, "skip_unchanged": True})
    return icfg, tuple(vector_fields | {HASH_FIELD})


def slice_copier(client, encoder, p: ReindexPlan, stamp, icfg, drop, progress, keep=lambda docs: docs):
    """Copies one slice under its lease, recording its progress there (``keep``: what sees the documents)."""
    def copy_slice(part: Slice, held: lease.Lease) -> dict:
        def step(n: int) -> None:
            held.check()
            held.progress["copied"] = held.progress.get("copied", 0) + n
            if progress:
                progress(n)
        docs = keep(documents(read_source(client, p.source_indices, part), drop))
        return copy_documents(client, encoder, p, stamp, docs, icfg, step).as_dict()
    return copy_slice


def documents(stored: Iterator[Stored], drop: tuple[str, ...]) -> Iterator[dict]:
    """Stored documents as ``{"_id": ..., **_source}`` records without the ``drop`` fields (vectors, hashes)."""
    for d in stored:
        yield {**{k: v for k, v in d.source.items() if k not in drop}, "_id": d.id}


def copy_documents(client, encoder, p: ReindexPlan, stamp, docs: Iterator[dict], icfg, progress=None):
    """``docs`` encoded into the target; ``ReindexError`` (the alias not moved) if any could not be."""
    try:
        result = indexing.run(client, encoder, p.target, docs, stamp, icfg, progress=progress)
    except IngestAborted as exc:
        raise ReindexError(f"{describe(exc.cause)}; {exc.summary.indexed} more documents are in {p.target}; "
                           "the alias was not moved, rerun the same command to resume") from exc
    if result.failed:
        raise ReindexError(f"{result.failed} documents could not be indexed into {p.target} (first: "
                           f"{result.errors[:1]}); the alias was not moved, rerun to resume")
    return result

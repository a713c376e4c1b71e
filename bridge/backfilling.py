"""Backfill an enabled index: give every document whose vector is missing or stale (content hash absent or
different from its text's) the vector of the text it holds, by conditional partial updates.

The documents are read in slices (``scan.read_documents``: N processes with ``I/N`` share one backfill without
overlap) and go through the ingest pipeline as ``update`` writes: each update names the ``_seq_no`` the text
was read with, so a writer's change made meanwhile is never overwritten (409: read and encoded again, at most
``IngestConfig.conflict_retries`` times), and a document deleted meanwhile is counted, never recreated (an
update of a missing document fails). A rerun skips documents whose hash is current: a killed backfill resumes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Callable, Iterator

from . import indexing, scan
from .actions import HASH_FIELD, content_hash
from .pipeline import IngestConfig, IngestSummary
from .records import text_of
from .scan import Slice
from .stamp import IndexStamp
from .types import Document


@dataclass
class BackfillSummary:
    read: int = 0
    encoded: int = 0
    unchanged: int = 0
    updated: int = 0
    conflicts_retried: int = 0
    deleted_meanwhile: int = 0
    no_text: int = 0
    failed: int = 0
    seconds: float = 0.0
    slice: str = "0/1"
    dead_letter: str | None = None
    errors: list[dict] = field(default_factory=list)

    @property
    def docs_per_s(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0

    def add(self, part: IngestSummary) -> None:
        self.read += part.read
        self.encoded += part.encoded
        self.unchanged += part.skipped_unchanged
        self.updated += part.indexed
        self.conflicts_retried += part.conflicts_retried
        self.deleted_meanwhile += part.deleted_meanwhile
        self.no_text += part.no_text
        self.failed += part.failed
        self.seconds += part.seconds
        self.errors.extend(part.errors)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["docs_per_s"] = round(self.docs_per_s, 2)
        out["errors"] = self.errors[:20]
        return out


def _documents(client, index: str, stamp: IndexStamp, part: Slice, query: dict | None) -> Iterator[Document]:
    fields = [*stamp.text_fields, HASH_FIELD]
    for n, stored in enumerate(scan.read_documents(client, index, fields=fields, query=query, part=part), 1):
        yield Document(stored.id, "", {}, n, None, stored)


def run(client, name: str, encoder, stamp: IndexStamp, part: Slice = Slice(), query: dict | None = None,
        cfg: IngestConfig = IngestConfig(), dead_letter: str | Callable[[dict], None] | None = None,
        progress: Callable[[int], None] | None = None) -> BackfillSummary:
    """Backfill slice ``part`` of every index behind ``name`` (``query``: only the documents it matches)."""
    summary = BackfillSummary(slice=str(part), dead_letter=dead_letter if isinstance(dead_letter, str) else None)
    cfg = replace(cfg, write="update", unique_ids=False, text_fields=stamp.text_fields, skip_unchanged=False)
    for index in sorted(client.indices.get(index=name)):
        docs = _documents(client, index, stamp, part, query)
        summary.add(indexing.run(client, encoder, index, docs, stamp, cfg, dead_letter=dead_letter,
                                 progress=progress))
    return summary


def check(client, name: str, stamp: IndexStamp, part: Slice = Slice(), query: dict | None = None) -> dict:
    """What a backfill would do, without encoding or writing: documents read, and how many hold a current
    vector, a stale one (their text changed) or none."""
    key, counts = stamp.content_key(), {"read": 0, "current": 0, "stale": 0, "missing": 0, "no_text": 0}
    for index in sorted(client.indices.get(index=name)):
        for doc in _documents(client, index, stamp, part, query):
            counts["read"] += 1
            text, stored_hash = text_of(doc.stored.source, stamp.text_fields), doc.stored.source.get(HASH_FIELD)
            if not isinstance(text, str) or not text:
                counts["no_text"] += 1
            elif stored_hash is None:
                counts["missing"] += 1
            else:
                counts["current" if content_hash(Document(doc.id, text), key) == stored_hash else "stale"] += 1
    return counts

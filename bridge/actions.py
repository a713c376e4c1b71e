"""Documents -> encoded windows of bulk actions: the pure middle of ingest (and reindex, backfill).

Each document gets a ``content_hash`` over the text and everything that decides its stored vector, so
unchanged documents can be skipped (``Unchanged``) instead of re-encoded.

Three ways to write (``WRITES``): ``index`` replaces the whole document (indices the bridge owns);
``update`` writes only the vector and the hash of the text the cluster holds, and ``upsert`` merges the
record's fields into the stored document with the vector of the merged text (enabled indices, whose other
fields belong to other writers). Partial writes are conditional on the ``_seq_no``/``_primary_term`` the text
was read with, so a write made meanwhile is never overwritten by a vector of older text (the cluster answers
409, and the document is read and encoded again). An update stores the vector as a one-element list: the
engines merge an object into a stored object key by key, which would keep a stale vector's other tokens,
but replace a list (checked live; ``sparse.from_features`` reads both forms).
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from . import passages
from .errors import ConfigError
from .sparse import KeyCodec, prune, quantize, to_features
from .stamp import IndexStamp
from .records import text_of
from .types import BadRecord, Deletion, Document, Stored

log = logging.getLogger(__name__)

HASH_FIELD = "content_hash"
WRITES = ("index", "update", "upsert")


def content_hash(doc: Document, key: str = "") -> str:
    return hashlib.sha256(f"{key}\0{doc.text}".encode("utf-8")).hexdigest()[:32]


def bulk_action(index: str, doc: Document, features: dict[str, float], vector_field: str, digest: str) -> dict:
    source = {**doc.fields, vector_field: features, HASH_FIELD: digest}
    return _versioned({"_op_type": "index", "_index": index, "_id": doc.id, "_source": source}, doc.version)


def update_action(doc: Document, features: dict[str, float], vector_field: str, digest: str) -> dict:
    """A partial update of the stored document ``doc.stored``: ``doc.fields``, the vector (a one-element list,
    so that it replaces the stored one) and the hash, applied only if the document is still as it was read."""
    stored = doc.stored
    return {"_op_type": "update", "_index": stored.index, "_id": doc.id, "if_seq_no": stored.seq_no,
            "if_primary_term": stored.primary_term,
            "doc": {**doc.fields, vector_field: features if isinstance(features, list) else [features],
                    HASH_FIELD: digest}}


def create_action(index: str, doc: Document, features: dict[str, float], vector_field: str, digest: str) -> dict:
    """An upsert of a document the cluster did not hold: created only if it still does not exist."""
    return {"_op_type": "create", "_index": index, "_id": doc.id,
            "_source": {**doc.fields, vector_field: features, HASH_FIELD: digest}}


def delete_action(index: str, deletion: Deletion) -> dict:
    return _versioned({"_op_type": "delete", "_index": index, "_id": deletion.id}, deletion.version)


def _versioned(action: dict, version: int | None) -> dict:
    """With an external version the cluster keeps the highest: a replayed older record never wins."""
    if version is not None:
        action.update(version=version, version_type="external")
    return action


@dataclass(frozen=True)
class Unchanged:
    """A document whose stored hash already matches: not re-encoded, not re-sent."""

    id: str
    line: int | None = None


@dataclass(frozen=True)
class Missing:
    """A partial write of a document the cluster does not hold (deleted meanwhile): never recreated."""

    id: str
    line: int | None = None


@dataclass(frozen=True)
class NoText:
    """A stored document with nothing in its text fields: no vector to write (``update``)."""

    id: str
    line: int | None = None


@dataclass(frozen=True)
class Encoded:
    """A document ready to send: its bulk ``action`` and where it came from (``line``); ``retry`` is what to
    read and encode again if a conditional write finds the document changed meanwhile."""

    action: dict
    line: int | None = None
    retry: Document | None = None

    @property
    def id(self) -> str:
        return self.action["_id"]


def encoded_actions(docs: Iterable[Document | Deletion | BadRecord], encoder, index: str, stamp: IndexStamp, window: int,
                    unchanged: Callable[[dict[str, str]], set[str]] | None = None, write: str = "index",
                    current: Callable[[list[str]], dict[str, Stored]] | None = None
                    ) -> Iterator[list[Encoded | BadRecord | Unchanged | Missing]]:
    """Windows of encoded documents (bad records, unchanged and missing documents passed through, in order).

    ``unchanged({id: content_hash})`` returns the ids already stored with that hash; they are skipped. With a
    partial ``write``, ``current(ids)`` returns the stored state of each id the cluster holds (text fields and
    hash), read for every document that does not come with one."""
    prune_cfg, quant_cfg = stamp.pruning, stamp.quantization
    if stamp.key_codec != KeyCodec.name:
        raise ConfigError(f"index uses key codec {stamp.key_codec!r}; this version knows {KeyCodec.name!r}")
    if write not in WRITES:
        raise ConfigError(f"write must be one of {WRITES}, got {write!r}")
    if write != "index" and current is None:
        raise ConfigError("a partial write needs the stored documents (current)")
    field_name, key = stamp.vector_field, stamp.content_key()

    def features(vector):
        return to_features(quantize(prune(vector, prune_cfg), quant_cfg), encoder.vocab)
    to_stored = (lambda vector: passages.stored(vector, features)) if stamp.model.passages else features
    buf: list[Document | Deletion | BadRecord] = []
    encoded = 0

    def flush() -> list[Encoded | BadRecord | Unchanged | Missing]:
        nonlocal encoded
        items = buf if write == "index" else _resolved(buf, write, stamp.text_fields, current)
        # one digest per item: a stream may carry several versions of an id in one window
        digests = [content_hash(d, key) if isinstance(d, Document) else None for d in items]
        if write == "index":
            latest = {d.id: h for d, h in zip(items, digests) if h is not None}
            stored = unchanged(latest) if unchanged and latest else set()
            skip = [h is not None and d.id in stored and latest[d.id] == h for d, h in zip(items, digests)]
        else:  # the stored hash came with the stored text
            skip = [write == "update" and h is not None and d.stored.source.get(HASH_FIELD) == h
                    for d, h in zip(items, digests)]
        todo = [d for d, h, s in zip(items, digests, skip) if h is not None and not s]
        vectors = iter(encoder.encode_documents([d.text for d in todo]))
        encoded += len(todo)
        log.info("encoded %d documents (%d so far), %d unchanged skipped", len(todo), encoded, sum(skip))
        out: list[Encoded | BadRecord | Unchanged | Missing] = []
        for item, digest, skipped in zip(items, digests, skip):
            if isinstance(item, (BadRecord, Missing, NoText)):
                out.append(item)
            elif isinstance(item, Deletion):
                out.append(Encoded(delete_action(index, item), item.line))
            elif skipped:
                out.append(Unchanged(item.id, item.line))
            else:
                value = to_stored(next(vectors))  # a feature object, or passage mode's list of passages
                if not value:
                    out.append(BadRecord("the text encodes to an empty vector", line=item.line, id=item.id))
                else:
                    out.append(_write(write, index, item, value, field_name, digest))
        return out

    for d in docs:
        buf.append(d)
        if len(buf) >= window:
            yield flush()
            buf = []
    if buf:
        yield flush()


def _write(write: str, index: str, doc: Document, features: dict[str, float], field_name: str, digest: str) -> Encoded:
    if write == "index":
        return Encoded(bulk_action(index, doc, features, field_name, digest), doc.line)
    if doc.stored is None:  # retried as it was: created if still absent, else merged into what appeared
        retry = Document(doc.id, "", doc.fields, doc.line)
        return Encoded(create_action(index, doc, features, field_name, digest), doc.line, retry)
    # the document existed: retried against what it holds then, never recreated if it was deleted meanwhile
    existed = Stored(doc.stored.index, doc.id, {})
    retry = Document(doc.id, "", doc.fields if write == "upsert" else {}, doc.line, None, existed)
    return Encoded(update_action(doc, features, field_name, digest), doc.line, retry)


def _resolved(items: list, write: str, text_fields: tuple[str, ...],
              current: Callable[[list[str]], dict[str, Stored]]) -> list:
    """A partial write's window with each document's stored state and the text to encode: for ``update`` the
    stored text (``Missing`` when the cluster does not hold the document), for ``upsert`` the stored document
    with the record's fields merged in. Deletions lose their external version: an enabled index's documents
    carry the cluster's own versions."""
    def unread(d) -> bool:  # no state read yet, or a retry's marker that the document existed
        return d.stored is None or d.stored.seq_no is None

    wanted = sorted({d.id for d in items if isinstance(d, Document) and unread(d)})
    found = current(wanted) if wanted else {}
    out: list = []
    for d in items:
        if isinstance(d, Deletion):
            # update: the index's own writers delete documents; a tombstone writes nothing (a replayed one must
            # never delete a document created again). upsert: deleted, as Kafka Connect's sink does.
            out.append(Missing(d.id, d.line) if write == "update" else Deletion(d.id, d.line))
            continue
        if not isinstance(d, Document):
            out.append(d)
            continue
        stored = found.get(d.id) if unread(d) else d.stored
        if stored is None and (write == "update" or d.stored is not None):  # gone: never recreated
            out.append(Missing(d.id, d.line))
            continue
        source = merged(stored.source if stored else {}, d.fields if write == "upsert" else {})
        text = text_of(source, text_fields)
        if not text and write == "update":  # nothing to encode: not an error of anyone's
            out.append(NoText(d.id, d.line))
            continue
        if isinstance(text, BadRecord) or not text:
            reason = text.reason if isinstance(text, BadRecord) else f"no text: fields {list(text_fields)} " \
                                                                    "are missing, empty or whitespace"
            out.append(BadRecord(reason + (" in the stored document" if write == "update" else ""), d.line, d.id))
            continue
        out.append(Document(d.id, text, d.fields if write == "upsert" else {}, d.line, None, stored))
    return out


def merged(stored: dict, change: dict) -> dict:
    """``change`` merged into ``stored`` as the engines merge a partial update: objects key by key, anything
    else replaced."""
    out = dict(stored)
    for k, v in change.items():
        out[k] = merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out

"""Documents -> encoded windows of bulk actions: the pure middle of ingest (and reindex).

Each document gets a ``content_hash`` over the text and everything that decides its stored vector, so
unchanged documents can be skipped (``Unchanged``) instead of re-encoded.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from .errors import ConfigError
from .sparse import KeyCodec, prune, quantize, to_features
from .stamp import IndexStamp
from .types import BadRecord, Deletion, Document

log = logging.getLogger(__name__)


def content_hash(doc: Document, key: str = "") -> str:
    return hashlib.sha256(f"{key}\0{doc.text}".encode("utf-8")).hexdigest()[:32]


def bulk_action(index: str, doc: Document, features: dict[str, float], vector_field: str, digest: str) -> dict:
    source = {**doc.fields, vector_field: features, "content_hash": digest}
    return _versioned({"_op_type": "index", "_index": index, "_id": doc.id, "_source": source}, doc.version)


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
class Encoded:
    """A document ready to send: its bulk ``action`` and where it came from (``line``)."""

    action: dict
    line: int | None = None

    @property
    def id(self) -> str:
        return self.action["_id"]


def encoded_actions(docs: Iterable[Document | Deletion | BadRecord], encoder, index: str, stamp: IndexStamp, window: int,
                    unchanged: Callable[[dict[str, str]], set[str]] | None = None
                    ) -> Iterator[list[Encoded | BadRecord | Unchanged]]:
    """Windows of encoded documents (bad records and unchanged documents passed through, in order).

    ``unchanged({id: content_hash})`` returns the ids already stored with that hash; they are skipped.
    """
    prune_cfg, quant_cfg = stamp.pruning, stamp.quantization
    if stamp.key_codec != KeyCodec.name:
        raise ConfigError(f"index uses key codec {stamp.key_codec!r}; this version knows {KeyCodec.name!r}")
    field_name, key = stamp.vector_field, stamp.content_key()
    buf: list[Document | Deletion | BadRecord] = []
    encoded = 0

    def flush() -> list[Encoded | BadRecord | Unchanged]:
        nonlocal encoded
        # one digest per item: a stream may carry several versions of an id in one window
        digests = [content_hash(d, key) if isinstance(d, Document) else None for d in buf]
        latest = {d.id: h for d, h in zip(buf, digests) if h is not None}
        stored = unchanged(latest) if unchanged and latest else set()
        skip = [h is not None and d.id in stored and latest[d.id] == h for d, h in zip(buf, digests)]
        todo = [d for d, h, s in zip(buf, digests, skip) if h is not None and not s]
        vectors = iter(encoder.encode_documents([d.text for d in todo]))
        encoded += len(todo)
        log.info("encoded %d documents (%d so far), %d unchanged skipped", len(todo), encoded, sum(skip))
        out: list[Encoded | BadRecord | Unchanged] = []
        for item, digest, skipped in zip(buf, digests, skip):
            if isinstance(item, BadRecord):
                out.append(item)
            elif isinstance(item, Deletion):
                out.append(Encoded(delete_action(index, item), item.line))
            elif skipped:
                out.append(Unchanged(item.id, item.line))
            else:
                features = to_features(quantize(prune(next(vectors), prune_cfg), quant_cfg), encoder.vocab)
                if not features:
                    out.append(BadRecord("the text encodes to an empty vector", line=item.line, id=item.id))
                else:
                    out.append(Encoded(bulk_action(index, item, features, field_name, digest), item.line))
        return out

    for d in docs:
        buf.append(d)
        if len(buf) >= window:
            yield flush()
            buf = []
    if buf:
        yield flush()

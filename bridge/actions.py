"""Documents -> encoded windows of bulk actions: the pure middle of ingest (and reindex).

Each document gets a ``content_hash`` over the text and everything that decides its stored vector, so
unchanged documents can be skipped (``Unchanged``) instead of re-encoded.
"""
from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from .sparse import KeyCodec, prune, quantize, to_features
from .types import BadRecord, Document

log = logging.getLogger(__name__)


def stamp_key(meta: dict) -> str:
    """What, besides the text, decides a document's stored vector: model, pooling, pruning, quantization."""
    keys = ("model", "pruning", "quantization", "key_codec", "vector_field")
    return json.dumps({k: meta.get(k) for k in keys}, sort_keys=True)


def content_hash(doc: Document, key: str = "") -> str:
    return hashlib.sha256(f"{key}\0{doc.text}".encode("utf-8")).hexdigest()[:32]


def bulk_action(index: str, doc: Document, features: dict[str, float], vector_field: str, digest: str) -> dict:
    source = {**doc.fields, vector_field: features, "content_hash": digest}
    return {"_op_type": "index", "_index": index, "_id": doc.id, "_source": source}


@dataclass(frozen=True)
class Unchanged:
    """A document whose stored hash already matches: not re-encoded, not re-sent."""

    id: str


def encoded_actions(docs: Iterable[Document | BadRecord], encoder, index: str, meta: dict, window: int,
                    unchanged: Callable[[dict[str, str]], set[str]] | None = None
                    ) -> Iterator[list[dict | BadRecord | Unchanged]]:
    """Windows of bulk actions (bad records and unchanged documents passed through, in order).

    ``unchanged({id: content_hash})`` returns the ids already stored with that hash; they are skipped.
    """
    from .config import PruneConfig, QuantConfig

    prune_cfg = PruneConfig(**meta.get("pruning", {}))
    quant_cfg = QuantConfig.from_meta(meta.get("quantization", {}))
    if meta.get("key_codec", KeyCodec.name) != KeyCodec.name:
        raise ValueError(f"index uses key codec {meta.get('key_codec')!r}; this version knows {KeyCodec.name!r}")
    field_name, key = meta["vector_field"], stamp_key(meta)
    buf: list[Document | BadRecord] = []
    encoded = 0

    def flush() -> list[dict | BadRecord | Unchanged]:
        nonlocal encoded
        digests = {d.id: content_hash(d, key) for d in buf if isinstance(d, Document)}
        skip = unchanged(digests) if unchanged and digests else set()
        todo = [d for d in buf if isinstance(d, Document) and d.id not in skip]
        vectors = iter(encoder.encode_documents([d.text for d in todo]))
        encoded += len(todo)
        log.info("encoded %d documents (%d so far), %d unchanged skipped", len(todo), encoded, len(skip))
        out: list[dict | BadRecord | Unchanged] = []
        for item in buf:
            if isinstance(item, BadRecord):
                out.append(item)
            elif item.id in skip:
                out.append(Unchanged(item.id))
            else:
                features = to_features(quantize(prune(next(vectors), prune_cfg), quant_cfg), encoder.vocab)
                if not features:
                    out.append(BadRecord("the text encodes to an empty vector", line=item.line, id=item.id))
                else:
                    out.append(bulk_action(index, item, features, field_name, digests[item.id]))
        return out

    for d in docs:
        buf.append(d)
        if len(buf) >= window:
            yield flush()
            buf = []
    if buf:
        yield flush()


def stored_unchanged(client, index: str, policy) -> Callable[[dict[str, str]], set[str]]:
    """``unchanged`` for ``encoded_actions``: ids whose stored ``content_hash`` equals the new one
    (the lookup retried under ``policy``, a ``RetryPolicy``)."""
    from .retry import retrying

    def fetch(ids: list[str]) -> dict:
        for attempt in retrying(policy, f"looking up {len(ids)} stored hashes"):
            with attempt:
                return client.mget(index=index, body={"ids": ids}, _source=["content_hash"])
        raise AssertionError("unreachable")

    def lookup(digests: dict[str, str]) -> set[str]:
        resp = fetch(list(digests))
        return {d["_id"] for d in resp["docs"]
                if d.get("found") and (d.get("_source") or {}).get("content_hash") == digests[d["_id"]]}
    return lookup

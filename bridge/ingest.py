"""Ingest: records -> documents -> encoded batches -> bulk actions -> ``streaming_bulk``.

Everything up to ``bulk_actions`` is a pure generator. ``run`` is the one edge: an encoder thread fills a
bounded queue while the calling thread feeds ``streaming_bulk`` from it, so encoding and bulk I/O
overlap and memory stays bounded. 429 rejections are resent by the helper (``max_retries``); the
transport itself retries connection errors and 502/503/504.
"""
from __future__ import annotations

import hashlib
import json
import logging
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Iterator

from .records import DeadLetter, to_documents
from .sparse import KeyCodec, prune, quantize, to_features
from .types import BadRecord, Document

log = logging.getLogger(__name__)

_DONE = object()


@dataclass(frozen=True)
class IngestConfig:
    id_field: str = "_id"
    text_fields: tuple[str, ...] = ("title", "text")
    window: int = 256           # documents encoded together (sorted by length inside)
    chunk_size: int = 500       # documents per bulk request
    max_chunk_bytes: int = 10 * 1024 * 1024
    max_retries: int = 8        # per document, on 429 only
    initial_backoff: float = 1.0
    max_backoff: float = 60.0
    queue_windows: int = 4      # encoded windows waiting for the bulk side
    refresh: bool = True
    bulk_load: bool = False     # refresh_interval -1 while loading, then restored (initial loads)
    skip_unchanged: bool = False  # don't re-encode documents stored with the same content hash

    def __post_init__(self) -> None:
        if not self.text_fields:
            raise ValueError("at least one text field is needed")
        for name in ("window", "chunk_size", "max_chunk_bytes", "queue_windows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


@dataclass
class IngestSummary:
    read: int = 0
    encoded: int = 0
    indexed: int = 0
    failed: int = 0
    skipped_unchanged: int = 0
    seconds: float = 0.0
    dead_letter: str | None = None
    errors: list[dict] = field(default_factory=list)

    @property
    def docs_per_s(self) -> float:
        return self.indexed / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        out = asdict(self)
        out["docs_per_s"] = round(self.docs_per_s, 2)
        out["errors"] = self.errors[:20]
        return out


# -- pure stages ---------------------------------------------------------------------------------

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


def stored_unchanged(client, index: str) -> Callable[[dict[str, str]], set[str]]:
    """``unchanged`` for ``encoded_actions``: ids whose stored ``content_hash`` equals the new one."""
    def lookup(digests: dict[str, str]) -> set[str]:
        resp = client.mget(index=index, body={"ids": list(digests)}, _source=["content_hash"])
        return {d["_id"] for d in resp["docs"]
                if d.get("found") and (d.get("_source") or {}).get("content_hash") == digests[d["_id"]]}
    return lookup


# -- the edge ------------------------------------------------------------------------------------

def run(client, encoder, index: str, records: Iterable[dict | BadRecord], meta: dict,
        cfg: IngestConfig = IngestConfig(), dead_letter: str | None = None,
        progress: Callable[[int], None] | None = None) -> IngestSummary:
    """Encode and index ``records`` into ``index`` (created beforehand with ``meta``).

    ``progress(n)`` is called as records come out of the encoder (before their bulk request)."""
    from .backends import helpers

    streaming_bulk = helpers(client).streaming_bulk
    summary = IngestSummary(dead_letter=dead_letter)
    letters = DeadLetter(dead_letter)
    windows: queue.Queue = queue.Queue(maxsize=cfg.queue_windows)
    failure: list[BaseException] = []
    stop = threading.Event()

    def produce() -> None:
        try:
            docs = to_documents(records, cfg.id_field, cfg.text_fields)
            unchanged = stored_unchanged(client, index) if cfg.skip_unchanged else None
            for batch in encoded_actions(docs, encoder, index, meta, cfg.window, unchanged):
                while not stop.is_set():
                    try:
                        windows.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer, re-raised there
            failure.append(exc)
        finally:
            windows.put(_DONE)

    def actions() -> Iterator[dict]:
        while True:
            batch = windows.get()
            if batch is _DONE:
                return
            for item in batch:
                summary.read += 1
                if progress:
                    progress(1)
                if isinstance(item, BadRecord):
                    summary.failed += 1
                    _record_error(summary, letters, {k: v for k, v in asdict(item).items() if v is not None})
                    continue
                if isinstance(item, Unchanged):
                    summary.skipped_unchanged += 1
                    continue
                summary.encoded += 1
                yield item

    started = time.monotonic()
    restore = _pause_refresh(client, index) if cfg.bulk_load else None
    worker = threading.Thread(target=produce, name="splade-encode", daemon=True)
    worker.start()
    try:
        for ok, item in streaming_bulk(client, actions(), chunk_size=cfg.chunk_size,
                                       max_chunk_bytes=cfg.max_chunk_bytes, raise_on_error=False,
                                       raise_on_exception=False, max_retries=cfg.max_retries,
                                       initial_backoff=cfg.initial_backoff, max_backoff=cfg.max_backoff):
            if ok:
                summary.indexed += 1
            else:
                summary.failed += 1
                (op, info), = item.items()
                _record_error(summary, letters, {"id": info.get("_id"), "reason": _reason(info)})
    finally:
        stop.set()
        worker.join(timeout=5)
        letters.close()
        if restore is not None:
            client.indices.put_settings(index=index, body={"index": {"refresh_interval": restore}})
    if failure:
        raise failure[0]
    if cfg.refresh:
        client.indices.refresh(index=index)
    summary.seconds = time.monotonic() - started
    return summary


def _pause_refresh(client, index: str):
    """Set ``refresh_interval: -1`` for the load; returns the value to restore (None = the default)."""
    current = client.indices.get_settings(index=index)
    restore = next(iter(current.values()))["settings"]["index"].get("refresh_interval")
    client.indices.put_settings(index=index, body={"index": {"refresh_interval": "-1"}})
    return restore


def _reason(info: dict) -> str:
    err = info.get("error")
    if isinstance(err, dict):
        return f"{err.get('type')}: {err.get('reason')}"
    return str(err or f"status {info.get('status')}")


def _record_error(summary: IngestSummary, letters: DeadLetter, entry: dict) -> None:
    log.warning("record %s rejected: %s", entry.get("id") or f"line {entry.get('line')}", entry.get("reason"))
    summary.errors.append(entry)
    letters.write(entry)

"""What changed in a reindex's source while it was copied, found without the writers' help.

Every write to a shard gets the next sequence number, so the writes made after a moment are exactly the
documents whose ``_seq_no`` is above that shard's ``max_seq_no`` read at that moment (``marks``); they are read
shard by shard in ``_seq_no`` order. Deletions leave no document to find: they show as ids the target holds and
the source does not, found by comparing both indices' ids in id order (``differences``), which also checks that
every document's content hash is the one its current text gives.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Callable, Iterator

from .actions import HASH_FIELD
from .errors import ReindexError
from .types import Stored

log = logging.getLogger(__name__)


def marks(client, indices: tuple[str, ...]) -> dict[tuple[str, int], int]:
    """``{(index, shard): max_seq_no}`` of each primary shard now."""
    stats = client.indices.stats(index=",".join(indices), level="shards", metric="docs")
    out = {}
    for index, body in stats["indices"].items():
        for shard, copies in body["shards"].items():
            for copy in copies:
                if copy["routing"]["primary"]:
                    out[(index, int(shard))] = int(copy["seq_no"]["max_seq_no"])
    return out


def changed_since(client, since: dict[tuple[str, int], int], page: int = 500) -> Iterator[Stored]:
    """Each document written since ``since`` (its current state), shard by shard in ``_seq_no`` order. The indices
    are refreshed first: a search sees only refreshed writes, and a write of the last second must not be missed."""
    client.indices.refresh(index=",".join(sorted({index for index, _ in since})))
    for (index, shard), mark in sorted(since.items()):
        after = [mark]
        while True:
            body = {"size": page, "query": {"range": {"_seq_no": {"gt": mark}}}, "sort": [{"_seq_no": "asc"}],
                    "search_after": after, "seq_no_primary_term": True}
            hits = client.search(index=index, body=body, preference=f"_shards:{shard}")["hits"]["hits"]
            if not hits:
                break
            for hit in hits:
                yield Stored(hit["_index"], hit["_id"], hit.get("_source") or {}, hit.get("_seq_no"),
                             hit.get("_primary_term"))
            after = hits[-1]["sort"]


def ids_in_order(client, index: str, fields: list[str] | None = None, page: int = 1000) -> Iterator[Stored]:
    """Every document of ``index`` in ``_id`` order (``fields`` of its source; None: the ids alone, which reads
    no ``_source`` and is several times faster), for a streamed comparison."""
    after = None
    while True:
        body = {"size": page, "sort": [{"_id": "asc"}], "_source": fields if fields else False,
                "query": {"match_all": {}}}
        if after is not None:
            body["search_after"] = after
        hits = client.search(index=index, body=body)["hits"]["hits"]
        if not hits:
            return
        for hit in hits:
            yield Stored(hit["_index"], hit["_id"], hit.get("_source") or {})
        after = hits[-1]["sort"]


def differences(source: Iterator[Stored], target: Iterator[Stored],
                expected_hash: Callable[[Stored], str | None] | None = None) -> tuple[list[str], list[str], list[str]]:
    """Walk both id-ordered streams once: (ids only the source holds, ids only the target holds, ids whose target
    hash differs from ``expected_hash(source document)``; without it, ids alone are compared)."""
    missing, extra, stale = [], [], []
    s, t = next(source, None), next(target, None)
    while s is not None or t is not None:
        if t is None or (s is not None and s.id < t.id):
            missing.append(s.id)
            s = next(source, None)
        elif s is None or t.id < s.id:
            extra.append(t.id)
            t = next(target, None)
        else:
            if expected_hash is not None and t.source.get(HASH_FIELD) != expected_hash(s):
                stale.append(s.id)
            s, t = next(source, None), next(target, None)
    return missing, extra, stale


@contextmanager
def write_block(client, indices: tuple[str, ...], limit_seconds: float, clock=time.monotonic):
    """Writes to ``indices`` refused (``index.blocks.write``) inside the block; lifted on the way out, whatever
    happens. Yields a function returning the seconds held so far, which raises ``ReindexError`` past
    ``limit_seconds``."""
    names = ",".join(indices)
    client.indices.put_settings(index=names, body={"index": {"blocks.write": True}})
    started = clock()

    def held() -> float:
        seconds = clock() - started
        if seconds > limit_seconds:
            raise ReindexError(f"the write block on {names} would last over {limit_seconds:g} s; it was lifted and "
                               "the alias was not moved: rerun to catch up again (or allow a longer block)")
        return seconds
    try:
        yield held
    finally:
        try:
            client.indices.put_settings(index=names, body={"index": {"blocks.write": None}})
        except Exception as exc:  # the cluster may be why we are here
            log.error("could not lift the write block on %s (%s): set index.blocks.write to null by hand", names, exc)

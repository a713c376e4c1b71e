"""What changed in a reindex's source while it was copied, found without the writers' help.

Every write to a shard gets the next sequence number, so the writes made after a moment are exactly the
documents whose ``_seq_no`` is above that shard's ``max_seq_no`` read at that moment (``marks``); they are read
shard by shard in ``_seq_no`` order. Deletions leave no document to find: they show as ids the target holds and
the source does not, found by comparing both indices' ids in id order (``differences``), which also checks that
every document's content hash is the one its current text gives; under the write block only the shards whose
document counts differ are compared (``id_differences``).
"""
from __future__ import annotations

import heapq
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


def ids_in_order(client, index: str, fields: list[str] | None = None, page: int = 1000,
                 shard: int | None = None) -> Iterator[Stored]:
    """Every document of ``index`` (of one ``shard`` of it) in ``_id`` order (``fields`` of its source; None: the
    ids alone, which reads no ``_source`` and is several times faster), for a streamed comparison."""
    after = None
    extra = {} if shard is None else {"preference": f"_shards:{shard}"}
    while True:
        body = {"size": page, "sort": [{"_id": "asc"}], "_source": fields if fields else False,
                "query": {"match_all": {}}}
        if after is not None:
            body["search_after"] = after
        hits = client.search(index=index, body=body, **extra)["hits"]["hits"]
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


def id_differences(client, sources: tuple[str, ...], target: str) -> tuple[list[str], list[str]]:
    """(ids only the sources hold, ids only the target holds), both refreshed (a write made meanwhile, before the
    write block, is repaired by the next catch-up pass). One source
    index with the target's shard count: each id is in the same shard of both (the same routing). Every write
    since the last full comparison was caught up, so the target lacks no document and only a deletion can make
    a shard differ — and it changes that shard's count: only the shards whose counts differ are compared, and
    each difference is confirmed across the whole other index. A difference found elsewhere is a document its
    writer routed to another shard; such a move can offset a deletion's count in another shard, so then, as
    with several source indices or other shard counts, every id is compared."""
    shards = [_shards(client, i) for i in (*sources, target)]
    if len(sources) == 1 and shards[0] == shards[1]:
        source, counts = sources[0], [_counts(client, i, shards[0]) for i in (sources[0], target)]
        differ = [k for k in range(shards[0]) if counts[0][k] != counts[1][k]]
        candidates: tuple[list[str], list[str]] = ([], [])
        for k in differ:
            m, e, _ = differences(ids_in_order(client, source, shard=k), ids_in_order(client, target, shard=k))
            candidates[0].extend(m)
            candidates[1].extend(e)
        missing, extra = _absent(client, target, candidates[0]), _absent(client, source, candidates[1])
        log.info("shard counts differ in %d of %d shards: %d ids compared", len(differ), shards[0],
                 sum(counts[0][k] + counts[1][k] for k in differ))
        if (len(missing), len(extra)) == tuple(map(len, candidates)):
            return missing, extra
        # a document in another shard of each: its move can hide a deletion in a shard whose counts agree
        log.info("documents routed otherwise by their writer: every id compared")
    merged = heapq.merge(*(ids_in_order(client, i) for i in sources), key=lambda d: d.id)
    missing, extra, _ = differences(merged, ids_in_order(client, target))
    return missing, extra


def _shards(client, index: str) -> int:
    return int(client.indices.get_settings(index=index)[index]["settings"]["index"]["number_of_shards"])


def _counts(client, index: str, shards: int) -> list[int]:
    """Documents in each shard of ``index`` (top-level ones, as a search counts them)."""
    return [client.count(index=index, body={"query": {"match_all": {}}}, preference=f"_shards:{k}")["count"]
            for k in range(shards)]


def _absent(client, index: str, ids: list[str]) -> list[str]:
    """Those of ``ids`` that no shard of ``index`` holds (an ids search reaches every shard, whatever routing)."""
    found: set[str] = set()
    for start in range(0, len(ids), 1000):
        part = ids[start:start + 1000]
        hits = client.search(index=index, body={"query": {"ids": {"values": part}}, "_source": False,
                                                "size": len(part)})["hits"]["hits"]
        found.update(h["_id"] for h in hits)
    return [i for i in ids if i not in found]


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

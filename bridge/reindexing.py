"""Zero-downtime reindex behind an alias: read the source, re-encode from text, verify, swap atomically.

The target is a new versioned index ``<alias>-<model-slug>-<UTC timestamp>`` created with
``refresh_interval: -1`` and no replicas. Its ``_meta.splade_bridge.reindex`` block is the checkpoint:
``state`` is ``copying`` until verification passes, so a rerun after a crash finds the unfinished
target and continues into it; documents already stored with the same content hash are skipped
(``indexing.stored_unchanged``), so finished batches are never re-encoded. The alias's lease (``lease``) records
where the catch-up of writes made meanwhile starts (``catchup.marks``), so a rerun catches up from there too.
A reindex can be shared by N processes, one slice each (``slices``).
"""
from __future__ import annotations

import heapq
import logging
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable, Iterator


from . import catchup, copying, disk, indexing, lease, scan, slices
from .aliases import alias_indices, resolve, swap_alias
from .actions import HASH_FIELD, content_hash
from .records import text_of
from .types import Document
from .errors import ConfigError, ReindexError
from .indices import stamp_of, write_stamp
from .scan import Slice
from .targets import ReindexPlan, announce_model, create_target, source_layout, verify
from .stamp import ModelStamp

log = logging.getLogger(__name__)


@dataclass
class ReindexSummary:
    plan: dict
    ingest: dict = field(default_factory=dict)
    source_count: int = 0
    target_count: int = 0
    verified_queries: int = 0
    swapped: bool = False
    deleted: list[str] = field(default_factory=list)
    catchup: dict = field(default_factory=dict)   # passes, caught_up, deletes_applied, write_block_seconds


@dataclass(frozen=True)
class CatchUpConfig:
    """How writes made during the copy are caught up: passes until one finds at most ``settle`` changed
    documents (at most ``max_passes``), then a write block of at most ``max_block_seconds`` on the source for the
    last pass, the id reconciliation and the swap. ``lease_seconds``: how long a dead reindex holds its alias."""

    max_passes: int = 10
    settle: int = 10
    max_block_seconds: float = 10.0
    lease_seconds: float = 60.0
    slice_wait_seconds: float = 600.0  # how long slices 1..N-1 of a shared reindex wait for slice 0

    def __post_init__(self) -> None:
        if self.max_passes < 0 or self.settle < 0 or self.max_block_seconds <= 0 or self.lease_seconds <= 0:
            raise ConfigError("max_passes and settle must be >= 0, max_block_seconds and lease_seconds > 0")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "model"


def find_resumable(client, alias: str, source_indices: tuple[str, ...], model: ModelStamp) -> str | None:
    """An unfinished target of an earlier run for the same alias, source and model."""
    candidates = client.indices.get(index=f"{alias}-*", ignore_unavailable=True, allow_no_indices=True)
    found = None
    for name in sorted(candidates, reverse=True):
        stamp = stamp_of(client, name)
        state = stamp.reindex if stamp else None
        if state is None or state.state != "copying":
            continue
        if found is None and state.source_indices == source_indices and stamp.model.revision == model.revision:
            found = name
        else:
            log.warning("%s is an unfinished target of another reindex of %s (%s from %s); unless a reindex still "
                        "writes it, delete it: splade-bridge index delete %s", name, alias, stamp.model.model,
                        ",".join(state.source_indices), name)
    return found


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


def run(client, encoder, p: ReindexPlan, cfg: indexing.IngestConfig = indexing.IngestConfig(),
        sample_queries: int = 5, progress: Callable[[int], None] | None = None,
        confirm_delete: Callable[[list[str]], bool] = lambda names: True,
        catch: CatchUpConfig = CatchUpConfig(), part: Slice = Slice()) -> ReindexSummary:
    """Copy, catch up, verify and swap under the alias's lease (``ReindexError`` when another reindex holds it).
    Shared by N processes (``part`` I/N, ``slices``): slice 0 does all that, the others copy their slice only."""
    if part.index > 0:
        return _copy_slice(client, encoder, p, cfg, part, catch, progress)
    held = lease.Lease(client, p.alias, catch.lease_seconds)
    previous = held.acquire(p.target)
    if previous and previous.get("blocking"):  # its holder died inside the write block: lift what it left
        log.warning("lifting the write block a dead reindex of %s left on %s", p.alias, ",".join(p.source_indices))
        client.indices.put_settings(index=",".join(p.source_indices), body={"index": {"blocks.write": None}})
    held.keep()
    try:
        summary = _run(client, encoder, p, cfg, sample_queries, progress, confirm_delete, catch, held, part,
                       previous if previous and previous.get("target") == p.target else {})
    except BaseException:
        held.release(keep={"renewed": 0})  # a rerun takes over at once, from the same marks
        raise
    held.release()
    return summary


def _copy_slice(client, encoder, p: ReindexPlan, cfg, part: Slice, catch: CatchUpConfig, progress) -> ReindexSummary:
    """Slice ``part`` (not the first) of a shared reindex: copied into the leader's target, nothing more."""
    target = slices.join(client, p.alias, part, catch.slice_wait_seconds)["target"]
    p = replace(p, target=target, resume=True)
    stamp = stamp_of(client, target)
    state = stamp.reindex if stamp else None
    if state is None or state.state != "copying" or state.source_indices != p.source_indices \
            or stamp.model.revision != encoder.stamp.revision:
        raise ReindexError(f"the reindex of {p.alias!r} copies {state.source_indices if state else '?'} into {target} "
                           f"with {stamp.model.model if stamp else '?'}: run every slice with the same source and model")
    icfg, drop = copying.settings(client, p, cfg)
    copy = copying.slice_copier(client, encoder, p, stamp, icfg, drop, progress)
    return ReindexSummary(plan=p.as_dict(), ingest=slices.copy_part(client, p.alias, part, target,
                                                                    catch.lease_seconds, copy) or {})


def _run(client, encoder, p, cfg, sample_queries, progress, confirm_delete, catch: CatchUpConfig, held, part,
         previous: dict) -> ReindexSummary:
    summary = ReindexSummary(plan=p.as_dict())
    if p.resume:
        log.info("resuming into %s", p.target)
        stamp = stamp_of(client, p.target)
        if stamp is None or stamp.reindex is None:
            raise ConfigError(f"{p.target} has no reindex checkpoint to resume from")
    else:
        room = disk.check_room(client, p.source_indices, p.replicas)
        if room:
            log.warning(room)
        stamp = create_target(client, p, encoder)
    announce_model(client, p.source_indices, encoder.stamp)
    icfg, drop = copying.settings(client, p, cfg)
    # before any snapshot (every later write is caught up); a rerun starts where the first run did
    if previous.get("marks"):
        since = slices.decode_marks(previous["marks"])
    else:  # fresh marks: a slice copied before them must be copied again (cheap: unchanged documents skipped)
        since = catchup.marks(client, p.source_indices)
        slices.clear(client, p.alias, part.count)
    held.renew(marks=slices.encode_marks(since), slices=part.count, ready=True)
    queries: list[str] = []

    def sampled(stream: Iterator[dict]) -> Iterator[dict]:
        for d in stream:
            if len(queries) < sample_queries and isinstance(d.get(p.text_fields[0]), str) and d[p.text_fields[0]]:
                queries.append(d[p.text_fields[0]][:200])
            yield d

    summary.ingest = copying.slice_copier(client, encoder, p, stamp, icfg, drop, progress, sampled)(part, held)
    if part.count > 1:  # the other slices' processes copy theirs (a dead one's is copied here)
        copy = copying.slice_copier(client, encoder, p, stamp, icfg, drop, progress)
        summary.ingest["slices_taken_over"] = slices.await_parts(client, p.alias, p.target, part.count,
                                                                 catch.lease_seconds, copy)
    # a changed document is written whole (its other fields too); one changed again while read comes twice
    fresh = replace(icfg, skip_unchanged=False, unique_ids=False)
    counts = {"passes": 0, "caught_up": 0, "deletes_applied": 0, "write_block_seconds": 0.0}

    def catch_up() -> int:  # one pass: what was written since the last marks
        nonlocal since
        held.check()
        log.info("catch-up pass %d into %s", counts["passes"] + 1, p.target)
        now = catchup.marks(client, p.source_indices)
        docs = copying.documents(catchup.changed_since(client, since), drop)
        changed = copying.copy_documents(client, encoder, p, stamp, docs, fresh).read
        since, counts["passes"], counts["caught_up"] = now, counts["passes"] + 1, counts["caught_up"] + changed
        return changed

    def settle() -> None:  # passes until one finds little: the last one, under the block, is then short
        for _ in range(catch.max_passes):
            if catch_up() <= catch.settle:
                return

    settle()
    summary.verified_queries = verify(client, encoder, p, queries)
    counts["deletes_applied"] = _reconcile(client, encoder, p, stamp, drop, fresh)  # the bulk of them, unblocked
    client.indices.put_settings(index=p.target, body={"index": {"refresh_interval": None,
                                                                 "number_of_replicas": p.replicas}})
    # the deletions made during the full comparison (a shard's count shows them), still unblocked
    counts["deletes_applied"] += _reconcile(client, encoder, p, stamp, drop, fresh, ids_only=True)
    settle()
    held.renew(blocking=True)  # a process taking over after this one dies lifts the block
    with catchup.write_block(client, p.source_indices, catch.max_block_seconds) as block:
        changed = catch_up()
        log.info("last pass under the write block: %d documents in %.3f s", changed, block())
        counts["deletes_applied"] += _reconcile(client, encoder, p, stamp, drop, fresh, ids_only=True, block=True)
        log.info("reconciled under the write block at %.3f s", block())
        summary.source_count = sum(client.count(index=i)["count"] for i in p.source_indices)
        block()
        write_stamp(client, p.target, replace(stamp, reindex=replace(stamp.reindex, state="done")))
        held.check()
        swap_alias(client, p.alias, p.target, tuple(alias_indices(client, p.alias)))
        counts["write_block_seconds"] = round(block(), 3)
    held.renew(blocking=False)
    slices.clear(client, p.alias, part.count)
    summary.catchup = counts
    write_stamp(client, p.target, replace(stamp, reindex=replace(stamp.reindex, state="done", catchup=counts)))
    log.warning("caught up %d documents in %d passes, %d deletions; writes blocked for %.3f s",
                counts["caught_up"], counts["passes"], counts["deletes_applied"], counts["write_block_seconds"])
    summary.swapped = True
    summary.target_count = client.count(index=p.alias)["count"]
    old = [i for i in p.previous if i != p.target]
    if p.delete_old and old and confirm_delete(old):
        client.indices.delete(index=",".join(old))
        summary.deleted = old
    return summary


def _reconcile(client, encoder, p: ReindexPlan, stamp, drop: tuple[str, ...], icfg, ids_only: bool = False,
               block: bool = False) -> int:
    """Delete from the target what the source no longer holds, copy what it lacks or holds stale. The ids and
    each document's hash are compared, or (``ids_only``) the ids alone in the shards whose counts differ
    (``catchup.id_differences``); under the write block (``block``) the repairs are then checked
    (``ReindexError`` if they still differ): a document changed since the first comparison was written whole
    by a catch-up pass, with its current hash. Returns the deletions applied."""
    key = stamp.content_key()

    def expected(doc) -> str | None:
        text = text_of(doc.source, p.text_fields)
        return content_hash(Document(doc.id, text), key) if isinstance(text, str) and text else None

    def compare():
        client.indices.refresh(index=",".join((*p.source_indices, p.target)))
        if ids_only:
            return (*catchup.id_differences(client, p.source_indices, p.target), [])
        sources = heapq.merge(*(catchup.ids_in_order(client, i, list(p.text_fields)) for i in p.source_indices),
                              key=lambda d: d.id)
        return catchup.differences(sources, catchup.ids_in_order(client, p.target, [HASH_FIELD]), expected)

    missing, extra, stale = compare()
    if extra:
        indexing.delete_ids(client, p.target, extra, icfg.retry)
    if missing or stale:
        docs = [d for i in p.source_indices for d in scan.read_documents(client, i, query={"ids": {
            "values": missing + stale}})]
        copying.copy_documents(client, encoder, p, stamp, copying.documents(iter(docs), drop), icfg)
    left = []
    if block and (extra or missing or stale):  # the repairs hold (the source is write-blocked: nothing moves)
        answer = client.mget(index=p.target, body={"ids": extra + missing + stale}, _source=False)["docs"]
        found = {d["_id"]: d.get("found") for d in answer}
        left = [i for i in extra if found.get(i)] + [i for i in missing + stale if not found.get(i)]
    if left:
        raise ReindexError(f"verification failed: the target differs from the source ({left[:5]}); "
                           "the alias was not moved")
    return len(extra)

"""A reindex shared by N processes (``--slice I/N``, the slices of ``scan.Slice``).

Slice 0 leads: it takes the alias's lease, creates the target (or resumes it), records in its lease where the
catch-up starts (``marks``, read before any slice opens its snapshot), the slice count and ``ready``; copies its
own slice; then waits until every other slice is copied — copying itself any slice whose process died (its lease
expired) or that no process took within a lease's length — and only then catches up, verifies and swaps.
Slices 1..N-1 join: they wait for the leader's ``ready`` record, take their own slice's lease, copy their part of
the source into the leader's target, record ``done`` and stop. Each slice's lease record says how far it is
(``copied``), for ``status`` and for the leader's log.
"""
from __future__ import annotations

import logging
import time
from typing import Callable

from . import lease
from .errors import ReindexError
from .scan import Slice

log = logging.getLogger(__name__)

Copy = Callable[[Slice, lease.Lease], dict]  # copies one slice under its lease, returns the ingest summary


def encode_marks(marks: dict[tuple[str, int], int]) -> list[list]:
    return [[index, shard, mark] for (index, shard), mark in sorted(marks.items())]


def decode_marks(rows: list[list]) -> dict[tuple[str, int], int]:
    return {(index, int(shard)): int(mark) for index, shard, mark in rows}


def others(alias: str, count: int) -> dict[str, Slice]:
    """The lease ids of slices 1..N-1 of a reindex of ``alias`` shared by ``count`` processes."""
    return {lease.lease_id(alias, str(Slice(i, count))): Slice(i, count) for i in range(1, count)}


def join(client, alias: str, part: Slice, wait_seconds: float, clock=time.time, sleep=time.sleep) -> dict:
    """The leader's lease record once it is ready (its ``target``), for slice ``part``: waits for it at most
    ``wait_seconds``; ``ReindexError`` if no leader came or it shares the reindex in another number of slices."""
    deadline = clock() + wait_seconds
    while True:
        leader = lease.read(client, [alias]).get(alias)
        if leader and leader.get("ready") and lease.expiry(leader) > clock():  # a live leader only
            if leader.get("slices", 1) != part.count:
                raise ReindexError(f"the reindex of {alias!r} into {leader.get('target')!r} is shared by "
                                   f"{leader.get('slices', 1)} slices, not {part.count}: rerun with the same I/N")
            return leader
        if clock() >= deadline:
            raise ReindexError(f"no reindex of {alias!r} became ready within {wait_seconds:.0f} s: start slice "
                               f"0/{part.count} too (it creates the target, waits for the other slices and swaps)")
        sleep(1.0)


def copy_part(client, alias: str, part: Slice, target: str, seconds: float, copy: Copy) -> dict | None:
    """Copy slice ``part`` into ``target`` under its lease; None when it is copied already. A record of another
    target (an earlier reindex's) is taken over; a live holder of this one refuses (``ReindexError``)."""
    held = lease.Lease(client, alias, seconds, part=str(part))
    record = lease.read(client, [held.key]).get(held.key)
    if record and record.get("target") == target and record.get("done"):
        return None
    held.acquire(target, stale=lambda other: other.get("target") != target)
    held.keep()
    try:
        summary = copy(part, held)
    except BaseException:
        held.release(keep={"renewed": 0})  # expired at once: the leader or a rerun takes it over
        raise
    held.release(keep={"done": True, "renewed": time.time()})
    return summary


def await_parts(client, alias: str, target: str, count: int, seconds: float, copy: Copy, clock=time.time,
                sleep=time.sleep) -> int:
    """Until slices 1..``count``-1 of ``target`` are copied; a slice whose holder died or that nobody took within
    ``seconds`` of the wait's start is copied here. Returns how many slices this process copied."""
    began, taken, said = clock(), 0, 0.0
    slices = others(alias, count)
    while True:
        records, pending = lease.read(client, list(slices)), []
        for key, part in slices.items():
            record = records.get(key)
            ours = record is not None and record.get("target") == target
            if ours and record.get("done"):
                continue
            if (ours and lease.expiry(record) > clock()) or (not ours and clock() - began < seconds):
                pending.append(f"{part} ({record.get('copied', 0) if ours else 'not started'})")
                continue
            log.warning("slice %s of the reindex of %s has no live process: copying it here", part, alias)
            try:
                taken += copy_part(client, alias, part, target, seconds, copy) is not None
            except lease.LeaseHeld as exc:  # its process came back first (a failed copy is raised)
                log.info("%s", exc)
            pending.append(str(part))
        if not pending:
            return taken
        if clock() - said >= 30:
            log.warning("waiting for slices of the reindex of %s: %s", alias, ", ".join(pending))
            said = clock()
        sleep(1.0)


def clear(client, alias: str, count: int) -> None:
    """Remove the slice records of a finished reindex."""
    if count > 1:  # one bulk request; a record already gone answers 404 in its item, which is fine
        actions = [{"delete": {"_index": lease.LOCKS, "_id": key}} for key in others(alias, count)]
        client.bulk(body=actions, refresh=True)

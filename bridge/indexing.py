"""Ingest into a cluster: the pipeline (``bridge.pipeline``) composed with a cluster sink (``BulkSender``:
transient failures and 429s retried under the ``RetryPolicy``), the stored-hash lookup for
``skip_unchanged``, a dead-letter file, and refresh handling for initial loads."""
from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Callable, Iterable

from . import pipeline
from .actions import HASH_FIELD
from .bulk import BulkSender, SendStats, item_status
from .config import RetryPolicy
from .connection.failures import describe, is_transient
from .connection.retry import call
from .errors import ClusterRefused, IngestAborted, hinted
from .pipeline import IngestConfig, IngestSummary, Outcome
from .records import DeadLetter
from .stamp import IndexStamp
from .types import BadRecord, Stored

log = logging.getLogger(__name__)

__all__ = ["IngestConfig", "IngestSummary", "IngestAborted", "run", "stored_unchanged"]


def run(client, encoder, index: str, records: Iterable[dict | BadRecord], stamp: IndexStamp,
        cfg: IngestConfig = IngestConfig(), dead_letter: str | Callable[[dict], None] | None = None,
        progress: Callable[[int], None] | None = None,
        acknowledge: Callable[[list[Outcome]], None] | None = None,
        observe: Callable[[str, float], None] | None = None) -> IngestSummary:
    """Encode and index ``records`` into ``index`` (created beforehand with ``stamp``).

    Rejected records go to ``dead_letter``: a JSONL file (created on first use) or a callable taking each
    entry (a stream's dead-letter topic). If the cluster stays away past ``cfg.retry``, ``IngestAborted``
    says how many documents were indexed before."""
    to_file = dead_letter is None or isinstance(dead_letter, str)
    summary = IngestSummary(dead_letter=dead_letter if to_file else None)
    stats = SendStats()
    sender = BulkSender(client, cfg.retry, stats, cfg.chunk_size, cfg.max_chunk_bytes)
    letters = DeadLetter(dead_letter if to_file else None)
    conflicts: list[Outcome] = []

    def acknowledged(outcomes: list[Outcome]) -> None:
        conflicts.extend(o for o in outcomes if o.status == "conflict")
        if acknowledge:
            acknowledge(outcomes)

    edges = pipeline.Edges(sink=sender.send, dead_letter=letters.write if to_file else dead_letter,
                           acknowledge=acknowledged, progress=progress, observe=observe,
                           unchanged=stored_unchanged(client, index, cfg.retry) if cfg.skip_unchanged else None,
                           current=stored_documents(client, index, stamp.text_fields, cfg.retry))
    started = time.monotonic()
    restore = _pause_refresh(client, index) if cfg.bulk_load else None
    try:
        pipeline.run(records, encoder, index, stamp, edges, cfg, summary)
        stalls = 0
        while conflicts and stalls < cfg.conflict_retries:  # changed meanwhile: read again, encode again
            # in input order (windows may be acknowledged out of order): several records of one id keep theirs
            again = [o.retry for o in sorted(conflicts, key=lambda o: o.line or 0)]
            summary.conflicts_retried += len(again)
            conflicts.clear()
            pipeline.run(again, encoder, index, stamp, edges, cfg, summary)
            stalls = stalls + 1 if len(conflicts) >= len(again) else 0  # give up only when no pass progresses
        _give_up(conflicts, summary, edges, cfg.conflict_retries)
    except Exception as exc:
        raise hinted(IngestAborted(summary, exc, f"{describe(exc)}; ingest stopped after {summary.indexed} "
                                                 f"documents were indexed ({summary.failed} rejected); ingest again, "
                                                 "skipping unchanged documents, to continue"), "skip_unchanged") from exc
    finally:
        letters.close()
        if restore is not None:
            _restore_refresh(client, index, restore)
        summary.request_retries, summary.document_resends = stats.request_retries, stats.document_resends
    if cfg.refresh:
        client.indices.refresh(index=index)
    summary.seconds = time.monotonic() - started
    return summary


def delete_ids(client, index: str, ids: list[str], policy: RetryPolicy) -> None:
    """Delete ``ids`` from ``index`` (absent ones are fine); ``ClusterRefused`` if the cluster refuses one."""
    sender = BulkSender(client, policy, SendStats())
    for start in range(0, len(ids), 500):
        answers = sender.send([{"_op_type": "delete", "_index": index, "_id": i} for i in ids[start:start + 500]])
        refused = [item for ok, item in answers if not ok and item_status(item) != 404]
        if refused:
            raise ClusterRefused(f"could not delete {len(refused)} documents from {index}: {refused[:1]}")


def _give_up(conflicts: list[Outcome], summary: IngestSummary, edges: pipeline.Edges, retries: int) -> None:
    """Documents still changing after every retry are refused: counted, dead-lettered, acknowledged."""
    refused = [replace(o, status="refused", retry=None, reason=f"the document changed during each of {retries + 1} "
                                                              "reads and writes; run again when its writers pause")
               for o in conflicts]
    for o in refused:
        summary.read += 1
        summary.failed += 1
        summary.errors.append(o.dead_letter_entry)
        if edges.dead_letter:
            edges.dead_letter(o.dead_letter_entry)
    if refused and edges.acknowledge:
        edges.acknowledge(refused)


def stored_documents(client, index: str, text_fields: tuple[str, ...], policy: RetryPolicy
                     ) -> Callable[[list[str]], dict[str, Stored]]:
    """The ``current`` edge: the stored text fields, hash, ``_seq_no`` and ``_primary_term`` of the ids the
    cluster holds (one ``mget`` per window, retried under ``policy``)."""
    def lookup(ids: list[str]) -> dict[str, Stored]:
        resp = call(lambda: client.mget(index=index, body={"ids": ids}, _source=[*text_fields, HASH_FIELD]), policy,
                    f"reading {len(ids)} stored documents", is_transient)
        return {d["_id"]: Stored(d["_index"], d["_id"], d.get("_source") or {}, d.get("_seq_no"),
                                 d.get("_primary_term")) for d in resp["docs"] if d.get("found")}
    return lookup


def stored_unchanged(client, index: str, policy: RetryPolicy) -> Callable[[dict[str, str]], set[str]]:
    """The ``unchanged`` edge: ids whose stored ``content_hash`` equals the new one (one ``mget`` per
    window, retried under ``policy``)."""
    def lookup(digests: dict[str, str]) -> set[str]:
        ids = list(digests)
        resp = call(lambda: client.mget(index=index, body={"ids": ids}, _source=[HASH_FIELD]), policy,
                    f"looking up {len(ids)} stored hashes", is_transient)
        return {d["_id"] for d in resp["docs"]
                if d.get("found") and (d.get("_source") or {}).get(HASH_FIELD) == digests[d["_id"]]}
    return lookup


def _restore_refresh(client, index: str, restore) -> None:
    try:
        client.indices.put_settings(index=index, body={"index": {"refresh_interval": restore}})
    except Exception as exc:  # the cluster may be the reason we are here
        log.error("could not restore refresh_interval of %s to %s (%s): set it by hand", index, restore, exc)


def _pause_refresh(client, index: str):
    """Set ``refresh_interval: -1`` for the load; returns the value to restore (None = the default)."""
    current = client.indices.get_settings(index=index)
    restore = next(iter(current.values()))["settings"]["index"].get("refresh_interval")
    client.indices.put_settings(index=index, body={"index": {"refresh_interval": "-1"}})
    return restore

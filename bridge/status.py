"""What the cluster holds, for operators: engine, version, capabilities, the splade-bridge indices (model,
reindex state, and for enabled indices how many documents have a vector), aliases and running reindexes."""
from __future__ import annotations

from . import lease
from .actions import HASH_FIELD
from .connection.client import clause_budget
from .connection.engines import engine_of, server_capabilities
from .indices import stamp_of


def cluster_status(client) -> dict:
    """Engine, version, capabilities, clause budget, splade-bridge indices (model, revision, reindex state,
    counts: ``documents``, where ``docs.count`` also counts passages; enabled indices: ``with_vector``, the share
    of documents holding one — stale ones are found by ``check_backfill``; an unfinished reindex target no running
    reindex writes: ``abandoned``), aliases, and the reindexes running (their leases: one per alias, one per slice
    of a shared reindex, with its progress)."""
    info = client.info()
    indices, reindexes = [], lease.records(client)
    writing = lease.written(reindexes)
    for row in client.cat.indices(format="json", h="index,docs.count,store.size,health"):
        if row["index"].startswith("."):
            continue
        stamp = stamp_of(client, row["index"])
        entry = {**row, "model": stamp.model.model if stamp else None,
                 "revision": stamp.model.revision if stamp else None,
                 "reindex_state": stamp.reindex.state if stamp and stamp.reindex else None,
                 "reindex_catchup": stamp.reindex.catchup if stamp and stamp.reindex else None}
        if stamp:  # _cat's docs.count also counts nested documents: each passage of a passage-mode index
            entry["documents"] = client.count(index=row["index"])["count"]
        if entry["reindex_state"] == "copying":  # an unfinished target no running reindex writes
            entry["abandoned"] = row["index"] not in writing
        if stamp and stamp.enabled:
            total = entry["documents"]
            with_vector = client.count(index=row["index"], body={"query": {"exists": {"field": HASH_FIELD}}})["count"]
            entry.update(enabled=True, with_vector=round(with_vector / total, 4) if total else 1.0)
        indices.append(entry)
    aliases = [r for r in client.cat.aliases(format="json", h="alias,index") if not r["alias"].startswith(".")]
    return {"engine": engine_of(client), "version": info["version"]["number"],
            "capabilities": server_capabilities(client, info), "clause_budget": clause_budget(client),
            "indices": sorted(indices, key=lambda r: r["index"]), "aliases": aliases, "reindexes": reindexes}

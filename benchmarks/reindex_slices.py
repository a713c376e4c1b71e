"""A reindex shared by N processes (`reindex --slice I/N`) against one process, on the same source, same machine.

    python benchmarks/reindex_slices.py [--docs 3000] [--processes 2] [--rounds 2] [--url http://127.0.0.1:9200]
    python benchmarks/reindex_slices.py --id-scan 200000    # the id comparison under the write block, alone

The source (SciFact documents, SPLADE-tiny, as many shards as processes) is built once. Each round (order
rotating) runs `splade-bridge reindex` into a fresh alias three ways:
- `1 process, all cores`: one process as usual;
- `1 process, T threads` and `N processes, T threads each` (T = cores/N, OMP_NUM_THREADS): N equal "machines"
  against one of them: what adding machines gives while the cluster keeps up;
  `N processes` against `1 process, all cores`: what sharing one machine's cores gives.
Wall time from the first start to the last exit (model loads included). Every target's (id, content hash) set is
checked equal to the first one's. Prints the CPU first.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from corpus import first_documents
from machine import cpu_model

import bridge
from bridge import catchup
from bridge.actions import HASH_FIELD

ROOT = Path(__file__).resolve().parents[1]


def reindex(url: str, source: str, alias: str, processes: int, threads: int | None) -> tuple[float, list[dict]]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else dict(os.environ)
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-m", "bridge", "--url", url, "reindex", "--source", source, "--alias",
                               alias, "--slice", f"{i}/{processes}", "--window", "128", "--format", "json"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for i in reversed(range(processes))]
    outs = [p.communicate()[0] for p in procs]
    seconds = time.monotonic() - started
    if any(p.returncode for p in procs):
        sys.exit(f"a reindex process failed: {[p.returncode for p in procs]}")
    return seconds, [json.loads(o) for o in outs]


def hashes(client, index: str) -> set:
    return {(d.id, d.source.get(HASH_FIELD)) for d in catchup.ids_in_order(client, index, [HASH_FIELD])}


def id_scan(client, count: int, shards: int = 5) -> None:
    """Two indices of ``count`` tiny documents with the same ids (``shards`` shards each), compared as the write
    block compared them before (every id), and as it does now (shard counts; the ids of differing shards only):
    with no deletion, and with one."""
    names = [f"bench-ids-{uuid.uuid4().hex[:6]}" for _ in range(2)]
    for name in names:
        client.indices.create(index=name, body={"settings": {"index": {"number_of_replicas": 0,
                                                                      "number_of_shards": shards}}})
        for start in range(0, count, 10000):
            lines = "".join(json.dumps({"index": {"_index": name, "_id": f"d{i:09d}"}}) + "\n{}\n"
                            for i in range(start, min(count, start + 10000)))
            client.bulk(body=lines)
        client.indices.refresh(index=name)

    def timed(what: str, compare) -> None:
        started = time.monotonic()
        found = compare()
        seconds = time.monotonic() - started
        print(f"{what:<44} {seconds:7.3f} s  {found}")

    try:
        timed(f"every id ({count:,} x 2)", lambda: catchup.differences(
            catchup.ids_in_order(client, names[0]), catchup.ids_in_order(client, names[1]))[:2])
        timed("shard counts, no deletion", lambda: catchup.id_differences(client, (names[0],), names[1]))
        client.delete(index=names[0], id="d000000007", refresh=True)
        timed(f"shard counts, one deletion (1 of {shards} shards)",
              lambda: catchup.id_differences(client, (names[0],), names[1]))
    finally:
        client.indices.delete(index=",".join(names))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--url", default="http://127.0.0.1:9200")
    ap.add_argument("--dataset", default=str(ROOT.parent / "shared" / "datasets" / "scifact"))
    ap.add_argument("--id-scan", type=int, default=0, help="Only measure the id comparison over this many ids.")
    args = ap.parse_args()
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {args.docs} documents, {args.processes} processes")
    if args.id_scan:
        return id_scan(bridge.connect(args.url), args.id_scan)
    docs = first_documents(args.dataset, args.docs)
    client = bridge.connect(args.url)
    tag = uuid.uuid4().hex[:6]
    source = f"bench-slices-{tag}"
    bridge.ingest(client, source, docs, encoder=bridge.load_encoder("splade-tiny"),
                  index_config=bridge.IndexConfig(shards=args.processes), config=bridge.IngestConfig(bulk_load=True))
    threads = max(1, (os.cpu_count() or 1) // args.processes)
    ways = {"1 process, all cores": (1, None), f"1 process, {threads} threads": (1, threads),
            f"{args.processes} processes, {threads} threads each": (args.processes, threads)}
    reference, times = None, {way: [] for way in ways}
    try:
        for r in range(args.rounds):
            order = list(ways)[r % len(ways):] + list(ways)[:r % len(ways)]
            for i, way in enumerate(order):
                seconds, summaries = reindex(args.url, source, f"{source}-r{r}-{i}", *ways[way])
                target = next(s for s in summaries if s["swapped"])["plan"]["target"]
                found = hashes(client, target)
                reference = reference or found
                assert found == reference and len(found) == args.docs, "targets differ"
                times[way].append(seconds)
                print(f"round {r + 1}: {way:<32} {seconds:6.1f} s ({args.docs / seconds:.1f} docs/s)", flush=True)
    finally:
        client.indices.delete(index=f"{source}*", ignore_unavailable=True)
    best = {way: min(t) for way, t in times.items()}
    whole, one, many = (best[w] for w in ways)
    print(f"best: {', '.join(f'{w} {t:.1f} s' for w, t in best.items())}")
    print(f"{args.processes} processes against 1 with the same threads each (N machines): {one / many:.2f}x; "
          f"against 1 with all cores (one machine): {whole / many:.2f}x; every target's (id, content hash) set equal")


if __name__ == "__main__":
    main()

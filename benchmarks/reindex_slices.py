"""A reindex shared by N processes (`reindex --slice I/N`) against one process, on the same source, same machine.

    python benchmarks/reindex_slices.py [--docs 3000] [--processes 2] [--rounds 2] [--url http://127.0.0.1:9200]

The source (SciFact documents, SPLADE-tiny, as many shards as processes) is built once. Each round (order
alternating) runs `splade-bridge reindex` into a fresh alias: once as one process, once as N processes, each
given cores/N threads (OMP_NUM_THREADS) so that together they use the machine's cores as one process does. Wall
time from the first start to the last exit (model loads included). Every target's (id, content hash) set is
checked equal to the one-process target's. Prints the CPU first. On one machine the N processes share its cores:
the gain is what one process leaves idle (tokenizing, bulk waits); on N machines each slice has its own.
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

from machine import cpu_model

import bridge
from bridge import catchup
from bridge.actions import HASH_FIELD

ROOT = Path(__file__).resolve().parents[1]


def reindex(url: str, source: str, alias: str, processes: int) -> tuple[float, list[dict]]:
    threads = str(max(1, (os.cpu_count() or 1) // processes))
    env = {**os.environ, "OMP_NUM_THREADS": threads, "HF_HUB_OFFLINE": "1"} if processes > 1 else dict(os.environ)
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=3000)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--url", default="http://127.0.0.1:9200")
    ap.add_argument("--dataset", default=str(ROOT.parent / "shared" / "datasets" / "scifact"))
    args = ap.parse_args()
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; {args.docs} documents, {args.processes} processes")
    docs = []
    with open(Path(args.dataset) / "corpus.jsonl") as f:
        for line in f:
            docs.append(json.loads(line))
            if len(docs) >= args.docs:
                break
    client = bridge.connect(args.url)
    tag = uuid.uuid4().hex[:6]
    source = f"bench-slices-{tag}"
    bridge.ingest(client, source, docs, encoder=bridge.load_encoder("splade-tiny"),
                  index_config=bridge.IndexConfig(shards=args.processes), config=bridge.IngestConfig(bulk_load=True))
    reference, times = None, {1: [], args.processes: []}
    try:
        for r in range(args.rounds):
            for n in ((1, args.processes) if r % 2 == 0 else (args.processes, 1)):
                seconds, summaries = reindex(args.url, source, f"{source}-r{r}-p{n}", n)
                target = next(s for s in summaries if s["swapped"])["plan"]["target"]
                found = hashes(client, target)
                reference = reference or found
                assert found == reference and len(found) == args.docs, "targets differ"
                times[n].append(seconds)
                print(f"round {r + 1}: {n} process{'es' if n > 1 else ''}: {seconds:6.1f} s "
                      f"({args.docs / seconds:.1f} docs/s)", flush=True)
    finally:
        client.indices.delete(index=f"{source}*", ignore_unavailable=True)
    one, many = min(times[1]), min(times[args.processes])
    print(f"best: 1 process {one:.1f} s, {args.processes} processes {many:.1f} s: {one / many:.2f}x; "
          "every target's (id, content hash) set equal")


if __name__ == "__main__":
    main()

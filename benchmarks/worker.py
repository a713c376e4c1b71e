"""Stream workers against single-process ingest, and the figures SCALING.md's capacity model is built from.

Needs a node (BRIDGE_URL, default http://127.0.0.1:9200), a Kafka broker (BRIDGE_KAFKA, default
127.0.0.1:19092; ``splade-bridge kafka up --port 19092``), SciFact in ../shared/datasets and the ``[kafka]``
extra. Every configuration runs in its own process (torch threads are per process):

    python benchmarks/worker.py [--docs 2000] [--backlog 5000] [--json out.json]

1. throughput on the same abstracts: ``ingest`` with 1 and 2 torch threads against 1 worker (1 thread) and
   2 workers (1 thread each), timed from the first message to zero lag (model loading excluded on both sides)
2. drain time of a backlog produced before 2 workers start
3. one node's bulk ceiling: pre-encoded documents bulk-indexed with no model in the loop
4. bytes per document in the index
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

from index_size import store_bytes
from machine import cpu_model

REPO = Path(__file__).resolve().parents[1]
SCIFACT = REPO.parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"
URL = os.environ.get("BRIDGE_URL", "http://127.0.0.1:9200").split(",")[0]
KAFKA = os.environ.get("BRIDGE_KAFKA", "127.0.0.1:19092")
ROWS: list[tuple[str, str]] = []
sys.path.insert(0, str(REPO))


def row(what: str, value: str) -> None:
    ROWS.append((what, value))
    print(f"  {what}: {value}", flush=True)


def abstracts(n: int, titles_only: bool = False) -> list[dict]:
    out = []
    for line in open(SCIFACT, encoding="utf-8"):
        d = json.loads(line)
        out.append({"_id": d["_id"], "title": d["title"]} if titles_only else
                   {"_id": d["_id"], "title": d["title"], "text": d["text"]})
        if len(out) >= n:
            break
    return out


def ingest_in_subprocess(index: str, docs_file: Path, threads: int) -> float:
    """docs/s of bridge.ingest in a fresh process with ``threads`` torch threads (model load excluded)."""
    code = f"""
import json, time, bridge
client = bridge.connect({URL!r})
encoder = bridge.load_encoder("splade-tiny", threads={threads})
docs = [json.loads(l) for l in open({str(docs_file)!r})]
client.indices.delete(index={index!r}, ignore_unavailable=True)
started = time.perf_counter()
summary = bridge.ingest(client, {index!r}, docs, encoder=encoder)
print(json.dumps({{"seconds": time.perf_counter() - started, "indexed": summary.indexed}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["indexed"] / result["seconds"]


def workers_drain(index: str, docs: list[dict], workers: int, produce_first: bool) -> float:
    """Seconds from the first message (or, with ``produce_first``, from the workers' start) to zero lag."""
    from tests.streams import group_lag, new_topic, produce, start_worker, stop_worker, worker_metrics
    from tests.proxy import free_port

    os.environ["BRIDGE_KAFKA"] = KAFKA
    topic = new_topic(max(2, workers), "bench")
    group = f"bench-{uuid.uuid4().hex[:6]}"
    if produce_first:
        produce(topic, ((d["_id"], d) for d in docs))
    ports = [free_port() for _ in range(workers)]
    started = time.perf_counter()
    procs = [start_worker(URL, index, topic, group, "--batch-size", "256", "--metrics-port", str(p)) for p in ports]
    try:
        if not produce_first:  # wait until every worker is up and assigned, then time the stream alone
            while not all(worker_metrics(p).get("splade_worker_rebalances_total{kind=\"assign\"}") for p in ports):
                time.sleep(0.2)
            time.sleep(1.0)
            started = time.perf_counter()
            produce(topic, ((d["_id"], d) for d in docs))
        while group_lag(topic, group) > 0:
            time.sleep(0.2)
        seconds = time.perf_counter() - started
    finally:
        for p in procs:
            stop_worker(p)
    return seconds


def bulk_ceiling(client, encoder, docs: list[dict], repeats: int) -> float:
    """docs/s of bulk-indexing pre-encoded documents (the vectors computed once, reused) into one node."""
    import bridge
    from bridge import indexing
    from bridge.records import to_documents

    index = "bench-bulk-ceiling"
    client.indices.delete(index=index, ignore_unavailable=True)
    stamp = bridge.create_index(client, index, encoder)

    texts = [d.text for d in to_documents(docs)]  # the text exactly as the pipeline will encode it

    class Reuse:  # the encoder edge replaced by a lookup: no model in the loop
        vocab, stamp = encoder.vocab, encoder.stamp
        cache = dict(zip(texts, encoder.encode_documents(texts)))

        def encode_documents(self, texts):
            return [self.cache[t] for t in texts]

    records = [{**d, "_id": f"{d['_id']}-{r}"} for r in range(repeats) for d in docs]
    started = time.perf_counter()
    summary = indexing.run(client, Reuse(), index, records, stamp,
                           bridge.IngestConfig(window=512, chunk_size=500, concurrency=4, refresh=False))
    seconds = time.perf_counter() - started
    client.indices.delete(index=index, ignore_unavailable=True)
    return summary.indexed / seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--backlog", type=int, default=5000)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--only", choices=["throughput", "drain", "ceiling"], default=None, help="Run one section.")
    args = ap.parse_args()
    import bridge

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; node {URL}; broker {KAFKA}", flush=True)
    client = bridge.connect(URL)
    docs = abstracts(args.docs)
    docs_file = REPO / ".bench-docs.jsonl"
    docs_file.write_text("".join(json.dumps(d) + "\n" for d in docs))
    try:
        if args.only in (None, "throughput"):
            throughput(docs, docs_file)
        if args.only in (None, "drain"):
            drain(args.backlog)
        if args.only in (None, "ceiling"):
            ceiling_and_size(client, docs)
    finally:
        docs_file.unlink(missing_ok=True)
        for name in ("bench-ingest-1", "bench-ingest-2", "bench-worker-1", "bench-worker-2", "bench-drain",
                     "bench-size"):
            client.indices.delete(index=name, ignore_unavailable=True)
    if args.json:
        args.json.write_text(json.dumps({"cpu": cpu_model(), "rows": ROWS}, indent=2))


def throughput(docs: list[dict], docs_file: Path) -> None:
    print(f"1. throughput on {len(docs)} SciFact abstracts (title + text)", flush=True)
    ingest1 = ingest_in_subprocess("bench-ingest-1", docs_file, threads=1)
    ingest2 = ingest_in_subprocess("bench-ingest-2", docs_file, threads=2)
    worker1 = len(docs) / workers_drain("bench-worker-1", docs, 1, produce_first=False)
    worker2 = len(docs) / workers_drain("bench-worker-2", docs, 2, produce_first=False)
    row("ingest, 1 torch thread: docs/s", f"{ingest1:.1f}")
    row("1 worker, 1 torch thread: docs/s", f"{worker1:.1f}")
    row("worker / ingest at 1 thread (goal >= 0.9)", f"{worker1 / ingest1:.2f}")
    row("ingest, 2 torch threads: docs/s", f"{ingest2:.1f}")
    row("2 workers, 1 torch thread each: docs/s", f"{worker2:.1f}")
    row("2 workers / ingest at 2 threads (goal >= 0.9)", f"{worker2 / ingest2:.2f}")


def drain(size: int) -> None:
    backlog = abstracts(size, titles_only=True)
    print(f"2. drain a backlog of {len(backlog)} messages (SciFact titles) with 2 workers", flush=True)
    seconds = workers_drain("bench-drain", backlog, 2, produce_first=True)
    row("backlog drain, workers' start included: seconds", f"{seconds:.1f}")
    row("backlog drain rate: messages/s", f"{len(backlog) / seconds:.1f}")


def ceiling_and_size(client, docs: list[dict]) -> None:
    import bridge

    print("3. one node's bulk ceiling, pre-encoded abstracts, 4 requests in flight", flush=True)
    encoder = bridge.load_encoder("splade-tiny")
    ceiling = bulk_ceiling(client, encoder, docs[:1000], repeats=5)
    row("bulk ceiling of one node (1 shard): docs/s", f"{ceiling:.0f}")
    print("4. index size", flush=True)
    client.indices.delete(index="bench-size", ignore_unavailable=True)
    bridge.ingest(client, "bench-size", docs, encoder=encoder)
    per_doc = store_bytes(client, "bench-size") / len(docs)  # docs.count would also count each nested passage
    row("index bytes per document (abstracts, default pruning and layout, force-merged, primaries)", f"{per_doc:.0f}")


if __name__ == "__main__":
    main()

"""Backfill of an enabled index against ingest of the same documents (goal: backfill >= 0.9x ingest's docs/s),
and the cluster's own cost of the writes: `update` actions (a partial doc) against `index` actions (whole
documents), as node CPU-seconds per 1,000 documents read from `_nodes/stats`.

    python benchmarks/backfill.py [--docs 2000] [--rounds 2] [--url http://127.0.0.1:9200]

Each round (order alternating): ingest the documents into a fresh bridge index; load the same documents by
plain _bulk into a fresh user index, `enable` it and `backfill` it. Prints the CPU first.
"""
from __future__ import annotations

import argparse
import json
import time
import uuid
from pathlib import Path

import requests
from corpus import first_documents
from machine import cpu_model

import bridge

ROOT = Path(__file__).resolve().parents[1]


def node_cpu_seconds(url: str) -> float:
    nodes = requests.get(f"{url}/_nodes/stats/process", timeout=30).json()["nodes"]
    return sum(n["process"]["cpu"]["total_in_millis"] for n in nodes.values()) / 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--url", default="http://127.0.0.1:9200")
    ap.add_argument("--dataset", default=str(ROOT.parent / "shared" / "datasets" / "scifact"))
    args = ap.parse_args()
    print(f"CPU: {cpu_model()}")
    docs = first_documents(args.dataset, args.docs)
    client = bridge.connect(args.url)
    encoder = bridge.load_encoder("splade-tiny")
    config = bridge.IngestConfig(text_fields=("title", "text"))
    results: dict[str, list] = {"ingest": [], "backfill": []}
    for r in range(args.rounds):
        for side in (("ingest", "backfill") if r % 2 == 0 else ("backfill", "ingest")):
            name = f"bench-{side}-{uuid.uuid4().hex[:6]}"
            if side == "ingest":
                cpu = node_cpu_seconds(args.url)
                s = bridge.ingest(client, name, [dict(d) for d in docs], encoder=encoder, config=config)
                results[side].append((s.indexed / s.seconds, node_cpu_seconds(args.url) - cpu))
            else:
                body = {"mappings": {"properties": {"title": {"type": "text"}, "text": {"type": "text"}}}}
                requests.put(f"{args.url}/{name}", json=body, timeout=60).raise_for_status()
                lines = "".join(json.dumps({"index": {"_index": name, "_id": d["_id"]}}) + "\n" + json.dumps(
                    {"title": d.get("title", ""), "text": d["text"]}) + "\n" for d in docs)
                requests.post(f"{args.url}/_bulk?refresh=true", data=lines.encode(), timeout=300,
                              headers={"content-type": "application/x-ndjson"}).raise_for_status()
                bridge.enable_index(client, name, encoder=encoder, text_fields=("title", "text"))
                cpu = node_cpu_seconds(args.url)
                started = time.monotonic()
                s = bridge.backfill(client, name, encoder=encoder)
                results[side].append((s.updated / (time.monotonic() - started), node_cpu_seconds(args.url) - cpu))
            client.indices.delete(index=name)
            rate, cpu = results[side][-1]
            print(f"round {r + 1} {side:<8} {rate:6.1f} docs/s   node {1000 * cpu / len(docs):.2f} CPU-s / 1k docs",
                  flush=True)
    for side in results:
        rates = sorted(x[0] for x in results[side])
        print(f"{side:<8} median {rates[len(rates) // 2]:.1f} docs/s")
    ratios = [b[0] / i[0] for i, b in zip(results["ingest"], results["backfill"])]
    print(f"backfill / ingest per round: {', '.join(f'{x:.2f}' for x in ratios)} (goal >= 0.9)")
    cost = [b[1] / i[1] for i, b in zip(results["ingest"], results["backfill"]) if i[1] > 0]
    print(f"node CPU, update actions / index actions: {', '.join(f'{x:.2f}' for x in cost)}")


if __name__ == "__main__":
    main()

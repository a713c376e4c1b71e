"""The long-document modes side by side: for each BEIR collection and each mode (window: windows max-pooled into
one vector; truncate: cut at 512 tokens; passages: nested passages, a document scored by its best one), build
the index and score it with `splade-bridge eval --ingest` through the live cluster (nDCG@10, R@100, and BM25 on
the same index), then measure the index's size (primaries, after a refresh and a merge to one segment) and the
search p50 of the collection's queries (expanded once beforehand: the cluster's time, not the model's).

    python benchmarks/long_collection.py --dataset ../shared/datasets/scifact --out runs/scifact-long   # etc.
    python benchmarks/long_documents.py --datasets ../shared/datasets/{scifact,cranfield,medline} \\
        runs/{scifact,cranfield,medline}-long --model splade-tiny

Prints one Markdown row per collection and mode, and the CPU.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from index_size import store_bytes
from machine import cpu_model

MODES = ("truncate", "window", "passages")


def measure(client, url: str, dataset: Path, mode: str, model: str) -> dict:
    import bridge

    index = f"bench-long-{dataset.name}-{mode}"
    client.indices.delete(index=index, ignore_unavailable=True)
    cli = [sys.executable, "-m", "bridge", "--url", url, "-q", "eval", "--dataset", str(dataset), "--index", index,
           "--ingest", "--long-documents", mode, "--model", model, "--modes", "bm25,splade",
           "--metrics", "nDCG@10,R@100", "--format", "json"]
    started = time.monotonic()
    out = subprocess.run(cli, capture_output=True, text=True, check=True)
    results = json.loads(out.stdout)["results"]
    seconds = time.monotonic() - started
    size = store_bytes(client, index)
    searcher = bridge.open_searcher(client, index)
    queries = [json.loads(line)["text"] for line in open(dataset / "queries.jsonl") if line.strip()][:300]
    expanded = [searcher.expand(q, bridge.SearchOptions().query_prune) for q in queries]
    opts = bridge.SearchOptions(size=10, source=False)
    for tokens in expanded[:20]:  # warm up
        searcher.search_tokens(tokens, opts)
    times = []
    for tokens in expanded:
        t = time.perf_counter()
        searcher.search_tokens(tokens, opts)
        times.append(time.perf_counter() - t)
    client.indices.delete(index=index, ignore_unavailable=True)
    return {"dataset": dataset.name, "mode": mode, "nDCG@10": results["splade"]["nDCG@10"],
            "R@100": results["splade"]["R@100"], "bm25 nDCG@10": results["bm25"]["nDCG@10"],
            "size_mb": size / 2**20, "p50_ms": 1000 * float(np.median(times)), "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", type=Path, required=True)
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--model", default="splade-tiny")
    ap.add_argument("--url", default=os.environ.get("BRIDGE_URL", "http://127.0.0.1:9200"))
    args = ap.parse_args()
    import bridge

    client = bridge.connect(args.url)
    print(f"CPU: {cpu_model()}; model {args.model}; {args.url}", flush=True)
    print("| collection | mode | nDCG@10 | R@100 | BM25 nDCG@10 | index MB | search p50 ms | eval s |")
    print("|---|---|---:|---:|---:|---:|---:|---:|", flush=True)
    for dataset in args.datasets:
        for mode in args.modes:
            r = measure(client, args.url, dataset, mode, args.model)
            print(f"| {r['dataset']} | {mode} | {r['nDCG@10']:.4f} | {r['R@100']:.4f} | {r['bm25 nDCG@10']:.4f} | "
                  f"{r['size_mb']:.1f} | {r['p50_ms']:.2f} | {r['seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()

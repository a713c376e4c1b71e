"""Search latency by mode on one index, one run, the same queries: BM25, SPLADE, two-phase and hybrid
(client-side fusion; BM25 and SPLADE requests sent at once), as ratios against BM25 measured alongside.

Queries are expanded once beforehand, so the figures are the cluster's (and, for hybrid, the fusion's) time,
not the model's. Needs a node and an index built from a BEIR corpus (e.g. ``splade-bridge eval --dataset
../shared/datasets/scifact --index bench-scifact --ingest --model splade-tiny``).

    python benchmarks/search_modes.py --index bench-scifact --dataset ../shared/datasets/scifact
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from machine import cpu_model


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", required=True)
    ap.add_argument("--dataset", type=Path, required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ratio", type=float, default=0.4, help="two-phase ratio")
    ap.add_argument("--window", type=int, default=100, help="two-phase window")
    ap.add_argument("--hybrid-depth", type=int, default=100, help="hits fetched from each side before fusing")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import bridge
    from bridge import evaluation
    from bridge.query import match_query

    client = bridge.connect(os.environ.get("BRIDGE_URL", "http://127.0.0.1:9200"), timeout=120)
    info = client.info()["version"]
    encoder = bridge.load_encoder("splade-tiny", threads=2)
    searcher = bridge.open_searcher(client, args.index, encoder=encoder)
    texts = list(evaluation.load_beir(args.dataset, "test").queries.values())
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; {info.get('distribution', 'elasticsearch')} "
          f"{info['number']}; index {args.index}; {len(texts)} queries x {args.rounds} rounds, size 10; "
          f"two-phase ratio {args.ratio} window {args.window}; hybrid depth {args.hybrid_depth}")
    expanded = [searcher.expand(t) for t in texts]
    modes = {
        "bm25": None,
        "splade": bridge.SearchOptions(size=10, source=False),
        "two-phase": bridge.SearchOptions(size=10, source=False, mode="two-phase",
                                          two_phase=bridge.TwoPhase(ratio=args.ratio, window=args.window)),
        "hybrid": bridge.SearchOptions(size=10, source=False, mode="hybrid",
                                       hybrid=bridge.Hybrid(depth=args.hybrid_depth)),
    }
    fields = list(searcher.stamp.text_fields)

    def once(mode: str, text: str, tokens: dict) -> float:
        t0 = time.perf_counter()
        if modes[mode] is None:
            client.search(index=args.index, body=match_query(text, fields, size=10))
        else:
            searcher.search_tokens(tokens, modes[mode], text=text)
        return time.perf_counter() - t0

    for mode in modes:  # warm caches
        for text, tokens in list(zip(texts, expanded))[:30]:
            once(mode, text, tokens)
    lat: dict[str, list[float]] = {m: [] for m in modes}
    for _ in range(args.rounds):
        for mode in modes:
            lat[mode] += [once(mode, text, tokens) for text, tokens in zip(texts, expanded)]
    bm25 = pct(lat["bm25"], 50)
    print("\n| mode | p50 ms | p95 ms | p50 / BM25 |\n|---|---|---|---|")
    for mode, values in lat.items():
        print(f"| {mode} | {pct(values, 50):.2f} | {pct(values, 95):.2f} | {pct(values, 50) / bm25:.2f}x |")
    slower = max(pct(lat["bm25"], 50), pct(lat["splade"], 50))
    print(f"\ntwo-phase p50 / BM25 p50: {pct(lat['two-phase'], 50) / bm25:.2f}x (goal <= 1.2x)")
    print(f"hybrid p50 / slower side p50: {pct(lat['hybrid'], 50) / slower:.2f}x (goal <= 1.3x)")


if __name__ == "__main__":
    main()

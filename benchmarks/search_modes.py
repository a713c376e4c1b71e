"""Search latency by mode on one index, one run, the same queries: BM25, SPLADE, two-phase and hybrid
(client-side fusion; BM25 and SPLADE requests sent at once), as ratios against BM25 measured alongside. On a
node with the neural-search plugin (``cluster up --plugin neural-search``) also ``neural_sparse``, the plugin's
two-phase processor and its hybrid query (fused by the cluster).

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
    two = bridge.TwoPhase(ratio=args.ratio, window=args.window)
    hybrid = bridge.Hybrid(depth=args.hybrid_depth)
    deep = bridge.SearchOptions(size=args.hybrid_depth, source=False)
    modes = {
        "bm25": ("bm25", 10),
        "splade": bridge.SearchOptions(size=10, source=False),
        "two-phase": bridge.SearchOptions(size=10, source=False, mode="two-phase", two_phase=two, native="never"),
        # the two requests a client-side hybrid sends, each alone (hybrid p50 / the slower = the overlap's cost)
        f"bm25 @{args.hybrid_depth}": ("bm25", args.hybrid_depth),
        f"splade @{args.hybrid_depth}": deep,
        "hybrid (client-side)": bridge.SearchOptions(size=10, source=False, mode="hybrid", hybrid=hybrid,
                                                     native="never"),
    }
    if searcher.capabilities["native_two_phase"]:
        sparse = bridge.SearchOptions(size=10, source=False, form="neural_sparse")
        modes["splade neural_sparse"] = sparse
        modes["two-phase (plugin)"] = bridge.SearchOptions(size=10, source=False, form="neural_sparse",
                                                           mode="two-phase", two_phase=two, native="always")
    if searcher.capabilities["native_hybrid"]:
        modes["hybrid (plugin)"] = bridge.SearchOptions(size=10, source=False, mode="hybrid", hybrid=hybrid,
                                                        native="always")
    fields = list(searcher.stamp.text_fields)

    def once(mode: str, text: str, tokens: dict) -> float:
        t0 = time.perf_counter()
        if isinstance(modes[mode], tuple):
            client.search(index=args.index, body=match_query(text, fields, size=modes[mode][1]))
        else:
            searcher.search_tokens(tokens, modes[mode], text=text)
        return time.perf_counter() - t0

    for mode in modes:  # warm caches
        for text, tokens in list(zip(texts, expanded))[:30]:
            once(mode, text, tokens)
    lat: dict[str, list[float]] = {m: [] for m in modes}
    order = list(modes)
    for _ in range(args.rounds):  # modes interleaved query by query: drift on a busy machine hits all alike
        for text, tokens in zip(texts, expanded):
            order = order[1:] + order[:1]
            for mode in order:
                lat[mode].append(once(mode, text, tokens))
    bm25 = pct(lat["bm25"], 50)
    print("\n| mode | p50 ms | p95 ms | p50 / BM25 |\n|---|---|---|---|")
    for mode, values in lat.items():
        print(f"| {mode} | {pct(values, 50):.2f} | {pct(values, 95):.2f} | {pct(values, 50) / bm25:.2f}x |")
    slower = max(pct(lat["bm25"], 50), pct(lat["splade"], 50))
    sides = max(pct(lat[f"bm25 @{args.hybrid_depth}"], 50), pct(lat[f"splade @{args.hybrid_depth}"], 50))
    print()
    for mode in [m for m in lat if m.startswith("two-phase")]:
        print(f"{mode} p50 / BM25 p50: {pct(lat[mode], 50) / bm25:.2f}x (goal <= 1.2x)")
    for mode in [m for m in lat if m.startswith("hybrid")]:
        print(f"{mode} p50 / slower size-10 side p50: {pct(lat[mode], 50) / slower:.2f}x; / slower side as sent "
              f"(size {args.hybrid_depth}): {pct(lat[mode], 50) / sides:.2f}x (goal <= 1.3x)")


if __name__ == "__main__":
    main()

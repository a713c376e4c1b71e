"""Pruning defaults chosen by a rule that protects every collection.

Each collection is encoded once, unpruned, in the default layout (passages: a long document's windows scored by
their best one). Every (document top_k per window, query top_k) pair is then scored exactly -- the cluster's score
is this dot product, as the parity tests prove -- and compared with no pruning on the same vectors:

    nDCG@10 of SPLADE alone, and of the default hybrid (BM25 from the live node, fused as `eval` fuses);
    top-10 agreement: the share of the unpruned top 10 still in the pruned top 10 (needs no judgments);
    postings: weights stored (index size), and postings a query reads (the sum of its terms' posting lengths,
    what a one-phase search costs).

The rule: a setting qualifies when, on every collection, nDCG@10 is within 0.5% of no pruning (never worse by
more), SPLADE alone and hybrid, and the mean top-10 agreement is at least 0.95. The judgment-free bound is what
protects collections the rule never saw: a few dozen judged queries move nDCG@10 by more than pruning does, so a
setting can gain on the three collections and lose on the next (128 / 32 did). Among the settings that qualify,
the fewest postings read wins (the most of any collection's), then the fewest stored.

    python benchmarks/pruning.py --datasets ../shared/datasets/{scifact,cranfield,medline} [--live]  # BRIDGE_URL

Prints the CPU, one Markdown table per collection and the setting the rule picks.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from scipy import sparse

from index_size import store_bytes
from machine import cpu_model

DOC_KS = (None, 384, 320, 256, 192, 128, 96, 64)
QUERY_KS = (None, 64, 56, 48, 40, 32, 24, 16)
MAX_LOSS = 0.005      # nDCG@10 may fall at most 0.5% below no pruning, on every collection
MIN_AGREEMENT = 0.95  # mean share of the unpruned top 10 kept, on every collection
DEPTH = 100


def encoded(dataset: Path, encoder, collection) -> dict:
    """One collection's unpruned passage vectors (a row each, with its document's number) and query vectors."""
    docs = [json.loads(line) for line in open(dataset / "corpus.jsonl") if line.strip()]
    texts = [f"{d.get('title', '')}\n{d['text']}".strip() for d in docs]
    rows, owner = [], []
    for n, vec in enumerate(encoder.encode_documents(texts)):
        for part in vec.passages or ():  # passage mode: one row per window
            rows.append(part.vector)
            owner.append(n)
    qids = list(collection.queries)
    queries = encoder.encode_query([collection.queries[q] for q in qids])
    return {"ids": [d["_id"] for d in docs], "docs": docs, "passages": rows, "owner": np.array(owner),
            "qids": qids, "queries": queries, "width": len(encoder.vocab)}


def pruned(vectors, k: int | None, width: int) -> sparse.csr_matrix:
    """``vectors`` pruned to their ``k`` largest weights each (all when k is None), as the bridge prunes a window
    (``sparse.prune``), one row each."""
    from bridge.config import PruneConfig
    from bridge.sparse import prune

    vectors = [prune(v, PruneConfig(top_k=k)) for v in vectors]
    indptr = np.cumsum([0] + [len(v) for v in vectors])
    return sparse.csr_matrix((np.concatenate([v.values for v in vectors]).astype(np.float64),
                              np.concatenate([v.indices for v in vectors]), indptr), shape=(len(vectors), width))


def runs(data: dict, passages: sparse.csr_matrix, queries: sparse.csr_matrix) -> dict[str, dict[str, float]]:
    """Each query's top documents by their best passage's dot product."""
    scores = (queries @ passages.T).toarray()                        # queries x passages
    best = np.zeros((scores.shape[0], len(data["ids"])))
    np.maximum.at(best.T, data["owner"], scores.T)                   # documents score their best passage
    out = {}
    for qid, row in zip(data["qids"], best):
        top = np.argpartition(-row, DEPTH)[:DEPTH]
        out[qid] = {data["ids"][i]: float(row[i]) for i in top if row[i] > 0}
    return out


def agreement(run: dict, reference: dict) -> float:
    """Mean over queries of the share of ``reference``'s top 10 that ``run``'s top 10 keeps."""
    def top10(r):
        return set(sorted(r, key=r.get, reverse=True)[:10])
    shares = [len(top10(run[q]) & top10(reference[q])) / max(1, len(top10(reference[q]))) for q in reference]
    return float(np.mean(shares))


def bm25(client, name: str, data: dict, collection) -> dict:
    from bridge import evaluation
    from bridge.connection.engines import helpers

    index = f"bench-pruning-bm25-{name}"
    client.indices.delete(index=index, ignore_unavailable=True)
    client.indices.create(index=index, body={"mappings": {"properties": {"title": {"type": "text"},
                                                                          "text": {"type": "text"}}}})
    helpers(client).bulk(client, ({"_index": index, "_id": d["_id"], "_source": {"title": d.get("title", ""),
                                                                                  "text": d["text"]}}
                                  for d in data["docs"]), chunk_size=500, refresh="wait_for")
    run = evaluation.bm25_run(client, index, ["title", "text"], collection.queries, DEPTH)
    client.indices.delete(index=index)
    return run


def sweep(name: str, data: dict, collection, bm25_run: dict | None) -> list[dict]:
    from bridge import evaluation

    rows = []
    qmats = {qk: pruned(data["queries"], qk, data["width"]) for qk in QUERY_KS}
    reference = None
    for dk in DOC_KS:
        passages = pruned(data["passages"], dk, data["width"])
        df = np.diff(passages.tocsc().indptr)                        # posting length of each term
        for qk in QUERY_KS:
            q = qmats[qk]
            run = runs(data, passages, q)
            if reference is None:
                reference = run
            read = [int(df[q.indices[q.indptr[i]:q.indptr[i + 1]]].sum()) for i in range(q.shape[0])]
            row = {"collection": name, "doc_k": dk, "query_k": qk,
                   "ndcg": evaluation.score(run, collection.qrels, ["nDCG@10"])["nDCG@10"],
                   "agreement": agreement(run, reference),
                   "stored": int(passages.nnz), "read": float(np.median(read))}
            if bm25_run is not None:
                hybrid = evaluation.fuse(bm25_run, run, k=DEPTH)
                row["hybrid"] = evaluation.score(hybrid, collection.qrels, ["nDCG@10"])["nDCG@10"]
            rows.append(row)
    base = rows[0]
    for row in rows:
        row["loss"] = row["ndcg"] / base["ndcg"] - 1
        if "hybrid" in row:
            row["hybrid_loss"] = row["hybrid"] / base["hybrid"] - 1
        row["stored_share"], row["read_share"] = row["stored"] / base["stored"], row["read"] / base["read"]
    return rows


def label(k) -> str:
    return "all" if k is None else str(k)


def table(rows: list[dict]) -> None:
    hybrid = "hybrid" in rows[0]
    print(f"\n{rows[0]['collection']}: nDCG@10 (vs no pruning) | top-10 agreement | postings stored | postings read p50"
          + (" | hybrid nDCG@10 (vs no pruning)" if hybrid else ""))
    print("| doc top_k | query top_k | SPLADE nDCG@10 | agreement | stored | read p50 |"
          + (" hybrid |" if hybrid else ""))
    print("|---|---|---:|---:|---:|---:|" + ("---:|" if hybrid else ""))
    for r in rows:
        line = (f"| {label(r['doc_k'])} | {label(r['query_k'])} | {r['ndcg']:.4f} ({100 * r['loss']:+.1f}%) | "
                f"{r['agreement']:.3f} | {r['stored_share']:.0%} | {r['read_share']:.0%} |")
        if hybrid:
            line += f" {r['hybrid']:.4f} ({100 * r['hybrid_loss']:+.1f}%) |"
        print(line)


def choose(all_rows: list[list[dict]]) -> tuple:
    """The setting the rule picks: it qualifies on every collection, then reads and stores the fewest postings."""
    settings = [(r["doc_k"], r["query_k"]) for r in all_rows[0]]
    qualified = []
    for i, setting in enumerate(settings):
        per = [rows[i] for rows in all_rows]
        if all(r["loss"] >= -MAX_LOSS and r.get("hybrid_loss", 0.0) >= -MAX_LOSS and r["agreement"] >= MIN_AGREEMENT
               for r in per):
            qualified.append((max(r["read_share"] for r in per), max(r["stored_share"] for r in per), setting))
    return min(qualified)[2] if qualified else (None, None)


def live(client, dataset: Path, encoder, collection, settings) -> list[dict]:
    """Each setting built through the bridge (``create_index`` + ``ingest``) on the live node: nDCG@10 of the
    cluster's own top 100, the index's size (primaries, merged to one segment) and the search p50 of the
    collection's queries (expanded once beforehand: the cluster's time, not the model's)."""
    import bridge
    from bridge import evaluation
    from bridge.config import PruneConfig
    from bridge.mapping import IndexConfig

    out = []
    for doc_k, query_k in settings:
        index = f"bench-pruning-{dataset.name}-{label(doc_k)}"
        client.indices.delete(index=index, ignore_unavailable=True)
        bridge.create_index(client, index, encoder, IndexConfig(prune=PruneConfig(top_k=doc_k)))
        summary = bridge.ingest(client, index, bridge.read_records(collection.corpus), encoder=encoder)
        assert all(e["reason"].startswith("no text") for e in summary.errors), summary.errors  # Cranfield's 2 empty
        size = store_bytes(client, index)
        searcher = bridge.open_searcher(client, index, encoder=encoder)
        expanded = {q: searcher.expand(t, PruneConfig(top_k=query_k)) for q, t in collection.queries.items()}
        opts = bridge.SearchOptions(size=DEPTH, source=False)
        for tokens in list(expanded.values())[:20]:  # warm up
            searcher.search_tokens(tokens, opts)
        run, times = {}, []
        for qid, tokens in expanded.items():
            started = time.perf_counter()
            hits = searcher.search_tokens(tokens, opts)
            times.append(time.perf_counter() - started)
            run[qid] = {h.id: h.score for h in hits}
        client.indices.delete(index=index)
        out.append({"doc_k": doc_k, "query_k": query_k, "size_mb": size / 2**20,
                    "p50_ms": 1000 * float(np.median(times)),
                    "ndcg": evaluation.score(run, collection.qrels, ["nDCG@10"])["nDCG@10"]})
        print(f"| {dataset.name} | {label(doc_k)} | {label(query_k)} | {out[-1]['ndcg']:.4f} | "
              f"{out[-1]['size_mb']:.1f} | {out[-1]['p50_ms']:.2f} |", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", type=Path, nargs="+", required=True)
    ap.add_argument("--model", default=None, help="model (default: the offline SPLADE-tiny)")
    ap.add_argument("--no-bm25", action="store_true", help="skip the hybrid column (no node needed)")
    ap.add_argument("--live", action="store_true",
                    help="also build no pruning, the old defaults (128 / 32) and the current ones on the node: "
                         "nDCG@10, index size and search p50 through the cluster")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from bridge import evaluation
    from bridge.config import ConnectionConfig, EncoderConfig
    from bridge.connection.client import connect
    from bridge.encoder import SpladeEncoder
    from bridge.model_store import fetch_tiny

    encoder = SpladeEncoder(EncoderConfig(model=args.model or str(fetch_tiny()), threads=2))
    client = None if args.no_bm25 else connect(ConnectionConfig.from_env(timeout=120))
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; layout {encoder.config.long_documents}; "
          f"rule: nDCG@10 >= no pruning - {MAX_LOSS:.1%} and top-10 agreement >= {MIN_AGREEMENT} on every collection")
    all_rows = []
    for dataset in args.datasets:
        collection = evaluation.load_beir(dataset, "test")
        data = encoded(dataset, encoder, collection)
        rows = sweep(dataset.name, data, collection, None if client is None else bm25(client, dataset.name, data,
                                                                                       collection))
        table(rows)
        all_rows.append(rows)
    doc_k, query_k = choose(all_rows)
    print(f"\nthe rule picks: documents top_k {label(doc_k)} per window, queries top_k {label(query_k)}")
    if args.live:
        from bridge.config import DEFAULT_DOC_TOP_K, DEFAULT_QUERY_TOP_K

        info = client.info()["version"]
        print(f"\nlive: {info.get('distribution', 'elasticsearch')} {info['number']}\n"
              "| collection | doc top_k | query top_k | nDCG@10 | index MiB | search p50 ms |\n"
              "|---|---|---|---:|---:|---:|")
        for dataset in args.datasets:
            live(client, dataset, encoder, evaluation.load_beir(dataset, "test"),
                 [(None, None), (128, 32), (DEFAULT_DOC_TOP_K, DEFAULT_QUERY_TOP_K)])


if __name__ == "__main__":
    main()

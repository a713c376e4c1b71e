"""What each precision below fp32 costs in quality, and buys in speed: every collection encoded whole at each
precision (documents with windows and the pruning defaults, as an index stores them; queries pruned as a search
sends them), scored exactly (sparse dot products, no cluster), against the fp32 run of the same process.

    pip install -e '.[bench,onnx,openvino]'
    python benchmarks/precision.py --datasets ../shared/datasets/{scifact,cranfield,medline}

Prints per collection and precision: nDCG@10 and its change against fp32, and the mean top-10 overlap with
fp32's ranking (|top10 ∩ top10_fp32| / 10 over the judged queries); speed is benchmarks/backends.py's. A precision
this CPU lacks is reported and skipped.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
from pathlib import Path

import numpy as np

from machine import cpu_model

TIERS = (("auto", "fp32"), ("openvino", "bf16"), ("torch", "bf16"), ("onnx", "int8"))


def sparse_matrix(vectors, size: int):
    from scipy.sparse import csr_matrix

    indptr = np.cumsum([0] + [len(v) for v in vectors])
    indices = np.concatenate([v.indices for v in vectors]) if vectors else np.zeros(0, np.int64)
    values = np.concatenate([v.values for v in vectors]) if vectors else np.zeros(0, np.float32)
    return csr_matrix((values, indices, indptr), shape=(len(vectors), size))


def ranking(doc_matrix, query_matrix, doc_ids: list[str], qids: list[str], k: int = 100) -> dict:
    scores = (query_matrix @ doc_matrix.T).toarray()
    run = {}
    for row, qid in enumerate(qids):
        top = np.argsort(-scores[row], kind="stable")[:k]
        run[qid] = {doc_ids[i]: float(scores[row, i]) for i in top if scores[row, i] > 0}
    return run


def top10(run: dict, qid: str) -> set[str]:
    return set(sorted(run.get(qid, {}), key=lambda d: -run[qid][d])[:10])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", type=Path, default=[Path("../shared/datasets/scifact")])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model", default="splade-tiny")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    import bridge
    from bridge.config import DEFAULT_DOC_TOP_K, DEFAULT_QUERY_TOP_K, PruneConfig
    from bridge.evaluation import load_beir, score
    from bridge.sparse import prune

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, {args.threads} threads; torch {torch.__version__}; "
          f"model {args.model}; documents top {DEFAULT_DOC_TOP_K} per window, queries top {DEFAULT_QUERY_TOP_K}")
    print("\n| collection | precision (backend) | nDCG@10 | vs fp32 | top-10 overlap |")
    print("|---|---|---:|---:|---:|")
    for folder in args.datasets:
        collection = load_beir(folder)
        docs = [json.loads(line) for line in open(collection.corpus, encoding="utf-8") if line.strip()]
        ids = [str(d["_id"]) for d in docs]
        texts = [(d.get("title", "") + "\n" + d.get("text", "")).strip() for d in docs]
        qids = sorted(collection.queries)
        base = None
        for backend, precision in TIERS:
            try:
                enc = bridge.load_encoder(args.model, backend=backend, precision=precision, threads=args.threads)
            except Exception as exc:  # no bf16 on this CPU, an extra missing
                print(f"| {folder.name} | {precision} ({backend}) | not run: {exc} | | |")
                continue
            dvecs = [prune(v, PruneConfig(top_k=DEFAULT_DOC_TOP_K)) for v in enc.encode_documents(texts)]
            qvecs = [prune(v, PruneConfig(top_k=DEFAULT_QUERY_TOP_K))
                     for v in enc.encode_query([collection.queries[q] for q in qids])]
            size = len(enc.vocab)
            run = ranking(sparse_matrix(dvecs, size), sparse_matrix(qvecs, size), ids, qids)
            ndcg = score(run, collection.qrels, ["nDCG@10"])["nDCG@10"]
            if base is None:
                base = (ndcg, run)
            overlap = np.mean([len(top10(run, q) & top10(base[1], q)) / 10 for q in qids])
            print(f"| {folder.name} | {precision} ({enc.backend}) | {ndcg:.4f} | {ndcg - base[0]:+.4f} | "
                  f"{overlap:.3f} |", flush=True)
            del enc
            gc.collect()


if __name__ == "__main__":
    main()

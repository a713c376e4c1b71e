"""Encoding speed by backend: ours (torch, ONNX Runtime) against sentence-transformers' SparseEncoder on its torch,
onnx and openvino backends — identical weights (the offline SPLADE-tiny), the same documents, the same threads,
in one process; then single-query expansion latency for each.

    pip install -e '.[bench,onnx]' 'sentence-transformers[onnx,openvino]'
    python benchmarks/backends.py --docs 1000 --threads 2

A backend whose packages are missing is reported as such and skipped. Documents are truncated at 512 tokens on
every side (SparseEncoder truncates; ours would window). Max |Δ| is against our torch vectors.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from machine import cpu_model


def dense(vec, size: int) -> np.ndarray:
    out = np.zeros(size, dtype=np.float32)
    out[vec.indices] = vec.values
    return out


def st_dense(rows) -> list[np.ndarray]:
    return [r.to_dense().float().numpy() if hasattr(r, "to_dense") else np.asarray(r) for r in rows]


def timed(fn, *args) -> tuple[float, object]:
    started = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - started, out


def latency(fn, texts: list[str], rounds: int = 1) -> tuple[float, float]:
    for t in texts[:20]:
        fn(t)
    values = []
    for _ in range(rounds):
        for t in texts:
            started = time.perf_counter()
            fn(t)
            values.append(time.perf_counter() - started)
    ms = np.asarray(values) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=Path("../shared/datasets/scifact"))
    ap.add_argument("--docs", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--st-batch", type=int, default=32, help="sentence-transformers batch size")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import torch
    import transformers

    torch.set_num_threads(args.threads)
    import bridge
    from bridge import model_store

    corpus = [json.loads(line) for _, line in zip(range(args.docs), open(args.dataset / "corpus.jsonl"))]
    texts = [(d.get("title", "") + "\n" + d.get("text", "")).strip() for d in corpus]
    queries = [json.loads(line)["text"] for _, line in zip(range(args.queries), open(args.dataset / "queries.jsonl"))]
    tiny = model_store.resolve("splade-tiny")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, {args.threads} threads; torch {torch.__version__}, "
          f"transformers {transformers.__version__}; {len(texts)} SciFact documents, {len(queries)} queries")

    ours = {b: bridge.load_encoder("splade-tiny", backend=b, threads=args.threads, long_documents="truncate")
            for b in ("torch", "onnx")}
    vocab = len(ours["torch"].vocab)
    rows, reference = [], None
    for name, enc in ours.items():
        enc.encode_documents(texts[:32])  # warm up (and export, for onnx)
        seconds, vecs = timed(enc.encode_documents, texts)
        got = np.stack([dense(v, vocab) for v in vecs])
        reference = got if reference is None else reference
        rows.append((f"bridge {name}", len(texts) / seconds, float(np.abs(got - reference).max()),
                     latency(enc.encode_query, queries)))

    try:
        import sentence_transformers
        from sentence_transformers import SparseEncoder
    except ImportError:
        SparseEncoder = None
    if SparseEncoder is not None:
        print(f"sentence-transformers {sentence_transformers.__version__}")
        with tempfile.TemporaryDirectory() as work:
            for backend in ("torch", "onnx", "openvino"):
                local = Path(work) / backend
                import shutil

                shutil.copytree(tiny, local)  # the ONNX/OpenVINO exports are written next to the weights
                try:
                    st = SparseEncoder(str(local), device="cpu", backend=backend)
                except Exception as exc:  # the backend's packages missing: say so, go on
                    print(f"sentence-transformers {backend}: not run ({type(exc).__name__}: {str(exc)[:160]})")
                    continue
                st.max_seq_length = 512
                st.encode_document(texts[:32], batch_size=args.st_batch)
                seconds, vecs = timed(lambda t: st.encode_document(t, batch_size=args.st_batch,
                                                                    convert_to_tensor=True), texts)
                got = np.stack(st_dense(vecs))
                rows.append((f"sentence-transformers {backend}", len(texts) / seconds,
                             float(np.abs(got - reference).max()), latency(st.encode_query, queries)))

    st_rows = [r for r in rows if r[0].startswith("sentence")]
    st_torch = next((r[1] for r in st_rows if r[0].endswith("torch")), None)
    st_best = max((r[1] for r in st_rows), default=None)
    print("\n| encoder | docs/s | vs ST torch | vs ST fastest | max abs diff | query p50 ms | query p95 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, speed, diff, (p50, p95) in rows:
        vs_torch = f"{speed / st_torch:.2f}x" if st_torch else "-"
        vs_best = f"{speed / st_best:.2f}x" if st_best else "-"
        print(f"| {name} | {speed:.1f} | {vs_torch} | {vs_best} | {diff:.2e} | {p50:.2f} | {p95:.2f} |")


if __name__ == "__main__":
    main()

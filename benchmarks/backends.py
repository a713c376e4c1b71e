"""Encoding speed by backend and precision: ours (torch, ONNX Runtime, OpenVINO; fp32, bf16, int8) against
sentence-transformers' SparseEncoder on its torch, onnx (plain, O3-optimised, qint8) and openvino (its default,
and forced to f32) backends — identical weights (the offline SPLADE-tiny), the same documents, the same threads,
one encoder loaded at a time in one process; then single-query expansion latency for each.

    pip install -e '.[bench,onnx,openvino]' 'sentence-transformers[onnx,openvino]'
    python benchmarks/backends.py --docs 1000 --threads 2

(sentence-transformers' onnx/openvino backends need optimum, which needs transformers < 5: a separate virtualenv.)
A backend whose packages are missing, or a precision this CPU lacks, is reported as such and skipped. Documents
are truncated at 512 tokens on every side (SparseEncoder truncates; ours would window). Max |Δ| is against our
torch fp32 vectors; "vs ST fastest fp32" compares with sentence-transformers' fastest row within 1e-4 of them.
Quality of the precisions below fp32: benchmarks/precision.py.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from corpus import first_documents
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

    corpus = first_documents(args.dataset, args.docs)
    texts = [(d.get("title", "") + "\n" + d.get("text", "")).strip() for d in corpus]
    queries = [json.loads(line)["text"] for _, line in zip(range(args.queries), open(args.dataset / "queries.jsonl"))]
    tiny = model_store.resolve("splade-tiny")
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, {args.threads} threads; torch {torch.__version__}, "
          f"transformers {transformers.__version__}; {len(texts)} SciFact documents, {len(queries)} queries")

    import gc

    # (backend, precision, bf16 screen): the screen is on by default; one row shows fp32 without it
    ours = [("torch", "fp32", True), ("onnx", "fp32", False), ("onnx", "fp32", True), ("openvino", "fp32", True),
            ("auto", "fp32", True), ("torch", "bf16", True), ("openvino", "bf16", True), ("onnx", "int8", True)]
    vocab, rows, reference = None, [], None
    for backend, precision, screen in ours:  # one at a time: a loaded runtime's threads must not compete
        try:
            enc = bridge.load_encoder("splade-tiny", backend=backend, precision=precision, threads=args.threads,
                                      long_documents="truncate", bf16_screen=screen)
        except Exception as exc:  # an extra missing, or no bf16 on this CPU: say so, go on
            print(f"bridge {backend} {precision}: not run ({type(exc).__name__}: {exc})")
            continue
        vocab = len(enc.vocab)
        enc.encode_documents(texts[:32])  # warm up (and export, for onnx/openvino)
        seconds, vecs = timed(enc.encode_documents, texts)
        got = np.stack([dense(v, vocab) for v in vecs])
        reference = got if reference is None else reference
        name = f"bridge {backend}" + (f" (= {enc.backend})" if backend == "auto" else "")
        name += " no bf16 screen" if precision == "fp32" and not screen else ""
        rows.append((f"{name} {precision}", len(texts) / seconds, float(np.abs(got - reference).max()),
                     latency(enc.encode_query, queries)))
        del enc, vecs
        gc.collect()

    try:
        import sentence_transformers
        from sentence_transformers import SparseEncoder
        from sentence_transformers.backend import export_dynamic_quantized_onnx_model, export_optimized_onnx_model
    except ImportError:
        SparseEncoder = None
    if SparseEncoder is not None:
        print(f"sentence-transformers {sentence_transformers.__version__}")
        variants = [("torch", "torch", {}, None), ("onnx", "onnx", {}, None),
                    ("onnx O3", "onnx", {"file_name": "onnx/model_O3.onnx"}, "O3"),
                    ("onnx qint8", "onnx", {"file_name": "onnx/model_qint8_avx512_vnni.onnx"}, "qint8"),
                    ("openvino", "openvino", {}, None),  # its default: bf16 where the CPU has it
                    ("openvino f32", "openvino", {"ov_config": {"INFERENCE_PRECISION_HINT": "f32"}}, None)]
        with tempfile.TemporaryDirectory() as work:
            import shutil

            for label, backend, kwargs, make in variants:
                local = Path(work) / label.replace(" ", "-")
                shutil.copytree(tiny, local)  # the ONNX/OpenVINO exports are written next to the weights
                try:
                    if make:  # sentence-transformers' own optimised / quantized exports
                        base = SparseEncoder(str(local), device="cpu", backend="onnx")
                        if make == "O3":
                            export_optimized_onnx_model(base, "O3", str(local))
                        else:
                            export_dynamic_quantized_onnx_model(base, "avx512_vnni", str(local))
                        del base
                    st = SparseEncoder(str(local), device="cpu", backend=backend, model_kwargs=kwargs)
                except Exception as exc:  # the backend's packages missing: say so, go on
                    print(f"sentence-transformers {label}: not run ({type(exc).__name__}: {str(exc)[:160]})")
                    continue
                st.max_seq_length = 512
                st.encode_document(texts[:32], batch_size=args.st_batch)
                seconds, vecs = timed(lambda t: st.encode_document(t, batch_size=args.st_batch,
                                                                    convert_to_tensor=True), texts)
                got = np.stack(st_dense(vecs))
                rows.append((f"sentence-transformers {label}", len(texts) / seconds,
                             float(np.abs(got - reference).max()), latency(st.encode_query, queries)))
                del st, vecs
                gc.collect()

    st_rows = [r for r in rows if r[0].startswith("sentence")]
    st_torch = next((r[1] for r in st_rows if r[0].endswith("torch")), None)
    st_best = max((r[1] for r in st_rows if r[2] <= 1e-4), default=None)  # its fastest exact (fp32) one
    print("\n| encoder | docs/s | vs ST torch | vs ST fastest fp32 | max abs diff | query p50 ms | query p95 ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, speed, diff, (p50, p95) in rows:
        vs_torch = f"{speed / st_torch:.2f}x" if st_torch else "-"
        vs_best = f"{speed / st_best:.2f}x" if st_best else "-"
        print(f"| {name} | {speed:.1f} | {vs_torch} | {vs_best} | {diff:.2e} | {p50:.2f} | {p95:.2f} |")


if __name__ == "__main__":
    main()

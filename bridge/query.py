"""Pure query DSL builders: weighted (already key-encoded) tokens -> request bodies, built as data.

Every form scores ``sum over tokens of weight x stored feature value``, i.e. the SPLADE dot product:
- ``rank_feature``: ``bool.should`` of ``rank_feature`` clauses with ``"linear": {}`` and ``boost`` = weight
  (the default saturation function would not be a dot product);
- ``neural_sparse``: OpenSearch >= 2.14 ``query_tokens`` (weights must lie in (0, 64]);
- ``sparse_vector``: Elasticsearch >= 8.15 ``query_vector``.
"""
from __future__ import annotations

from typing import Any, Sequence

from .errors import QueryError

FORMS = ("rank_feature", "neural_sparse", "sparse_vector")


def rank_feature_query(field: str, weights: dict[str, float]) -> dict:
    return {"bool": {"should": [
        {"rank_feature": {"field": f"{field}.{key}", "linear": {}, "boost": weight}}
        for key, weight in weights.items()
    ]}}


def neural_sparse_query(field: str, weights: dict[str, float]) -> dict:
    return {"neural_sparse": {field: {"query_tokens": dict(weights)}}}


def sparse_vector_query(field: str, weights: dict[str, float]) -> dict:
    return {"sparse_vector": {"field": field, "query_vector": dict(weights)}}


_BUILDERS = {"rank_feature": rank_feature_query, "neural_sparse": neural_sparse_query,
             "sparse_vector": sparse_vector_query}


def scoring_query(form: str, field: str, weights: dict[str, float]) -> dict:
    if form not in _BUILDERS:
        raise QueryError(f"query form must be one of {FORMS}, got {form!r}")
    if not weights:
        raise QueryError("the query expands to no tokens; nothing to search for")
    return _BUILDERS[form](field, weights)


def search_body(scoring: dict, size: int = 10, filters: Sequence[dict] = (),
                source: bool | Sequence[str] = True) -> dict:
    """Wrap a scoring query with filters, size and ``_source`` selection.

    Filters go in ``bool.filter`` beside the scoring query (in ``must``), so they restrict hits
    without adding to the score.
    """
    if size < 0:
        raise QueryError("size must be >= 0")
    query: dict[str, Any] = scoring
    if filters:
        query = {"bool": {"must": [scoring], "filter": [dict(f) for f in filters]}}
    body: dict[str, Any] = {"size": size, "query": query}
    if source is not True:
        body["_source"] = list(source) if not isinstance(source, bool) else source
    return body


def split_tokens(weights: dict[str, float], ratio: float, max_first: int | None = None
                 ) -> tuple[dict[str, float], dict[str, float]]:
    """Two-phase search: (first, rest). ``first`` holds the weights >= ``ratio`` x the largest (at most
    ``max_first`` of them, largest first, and never none); ``rest`` the others."""
    ranked = sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))
    if not ranked:
        return {}, {}
    cut = ratio * ranked[0][1]
    first = [kv for kv in ranked if kv[1] >= cut][:max_first] or ranked[:1]
    return dict(first), dict(ranked[len(first):])


def rescore(rest_scoring: dict, window: int, replace: bool = False) -> dict:
    """A rescore that adds the second phase's score to the first's (``total``, both weights 1): every hit in
    the window ends with the full dot product. ``replace``: the rescore query scores every token and its score
    replaces the first phase's (``query_weight`` 0)."""
    return {"window_size": window, "query": {"rescore_query": rest_scoring, "query_weight": 0.0 if replace else 1.0,
                                             "rescore_query_weight": 1.0, "score_mode": "total"}}


def match_query(text: str, fields: Sequence[str], size: int = 10, filters: Sequence[dict] = ()) -> dict:
    """BM25 over the text fields of the same index (the baseline; BEIR's multi_match settings)."""
    scoring = {"multi_match": {"query": text, "fields": list(fields), "type": "best_fields",
                                   "tie_breaker": 0.5}} \
        if len(fields) > 1 else {"match": {fields[0]: {"query": text}}}
    return search_body(scoring, size=size, filters=filters, source=False)

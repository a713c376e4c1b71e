"""Passage mode (``long_documents="passages"``): a long document's windows stored as nested passages, each with
its own vector, and scored by its best passage (MaxP), as the engines' own chunked fields score their chunks.

Pure: the nested mapping of the vector field, a document's stored passages from its encoded vector, the nested
query that wraps any scoring query (``score_mode: max``, so the cluster's score is the largest passage dot
product), and the same maximum computed client-side from stored passages (explanations, exact scoring).

Stored form: ``vector_field: [{"offset": <character where the passage's text starts>, "weights": {token: w}}, ...]``.
A list, so a partial update replaces a document's passages whole.
"""
from __future__ import annotations

from typing import Callable

from .errors import ConfigError
from .types import SparseVector

WEIGHTS = "weights"
OFFSET = "offset"
LIMIT_SETTING = "index.mapping.nested_objects.limit"  # nested objects one document may hold (10,000 by default)


def mapping(weights_mapping: dict) -> dict:
    """The vector field's mapping in passage mode: nested passages holding the weights and their offset."""
    return {"type": "nested", "properties": {OFFSET: {"type": "integer"}, WEIGHTS: dict(weights_mapping)}}


def weights_path(vector_field: str) -> str:
    """The field the scoring query names inside the nested query."""
    return f"{vector_field}.{WEIGHTS}"


def nested(vector_field: str, scoring: dict) -> dict:
    """``scoring`` (a query on ``weights_path``) applied to each passage; a document scores its best one."""
    return {"nested": {"path": vector_field, "score_mode": "max", "query": scoring}}


def stored(vector: SparseVector, features: Callable[[SparseVector], dict[str, float]]) -> list[dict]:
    """A document's passages as stored: each window's vector made ``features`` (pruned, quantized, keys
    escaped) with its offset; passages whose features are empty are left out."""
    parts = vector.passages or ()
    out = []
    for part in parts:
        weights = features(part.vector)
        if weights:
            out.append({OFFSET: part.offset, WEIGHTS: weights})
    return out


def is_stored(value) -> bool:
    """Whether a stored vector field value is passage mode's (a list of passages, each whose ``weights`` is an
    object: a feature object's values are numbers, even one whose token is "weights")."""
    return isinstance(value, list) and bool(value) and all(
        isinstance(p, dict) and isinstance(p.get(WEIGHTS), dict) for p in value)


def read(value) -> list[tuple[int, dict[str, float]]]:
    """(offset, stored feature object) of each stored passage (a document without passages: none)."""
    if not is_stored(value):
        return []
    return [(int(p.get(OFFSET) or 0), p[WEIGHTS]) for p in value]


def feature_objects(value) -> list:
    """The feature objects of a stored vector field value, whichever the mode: each passage's, or the value."""
    return [w for _, w in read(value)] if is_stored(value) else [value]


def best(query: dict[str, float], passages: list[tuple[int, dict[str, float]]]) -> tuple[int | None, float]:
    """(offset, dot product) of the passage that scores highest for ``query`` (token weights; the passages'
    tokens already decoded); (None, 0.0) without passages."""
    top: tuple[int | None, float] = (None, 0.0)
    for offset, weights in passages:
        score = sum(w * weights[t] for t, w in query.items() if t in weights)
        if top[0] is None or score > top[1]:
            top = (offset, score)
    return top


def check_limit(index: str, limit: int, max_windows: int) -> None:
    """``ConfigError`` when ``index`` cannot hold a document's passages (at most ``max_windows``)."""
    if max_windows > limit:
        raise ConfigError(f"index {index!r} allows {limit} nested objects per document ({LIMIT_SETTING}); passage "
                          f"mode stores up to {max_windows} passages per document: raise the setting or encode "
                          "fewer windows (max_windows)")

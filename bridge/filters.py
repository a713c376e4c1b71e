"""Filters as data: a small filter language, validated and translated to query DSL, so a filter can
only restrict which documents match, never run code, read another index or parse query syntax.

Allowed (each clause an object with exactly one key; values are literals):

- ``{"term": {"<field>": <scalar>}}``
- ``{"terms": {"<field>": [<scalar>, ...]}}``            (a list of values; lookups are refused)
- ``{"range": {"<field>": {"gte"|"gt"|"lte"|"lt": <scalar>, ...}}}``
- ``{"exists": {"field": "<field>"}}``
- ``{"ids": {"values": ["<id>", ...]}}``
- ``{"bool": {"filter"|"must"|"should"|"must_not": [<clause>, ...]}}``   (nested at most ``MAX_DEPTH`` deep)

A scalar is a string (at most ``MAX_STRING`` characters), a finite number or a boolean; a field is a plain
name (letters, digits, ``_ . @ -``, not starting with ``_``). Everything else — ``script``,
``query_string``, ``terms`` lookups, ``percolate``, ``more_like_this``, ``has_child``, unknown keys —
raises ``QueryError`` naming where in the filters it is, before any request is made.
"""
from __future__ import annotations

import math
import re
from typing import Any, Sequence

from .errors import QueryError

MAX_DEPTH = 4        # bool inside bool inside ...
MAX_CLAUSES = 64     # clauses in all filters of one request, nested ones included
MAX_VALUES = 1024    # values in one terms / ids clause
MAX_STRING = 1024
FIELD = re.compile(r"^[A-Za-z0-9@][A-Za-z0-9_.@-]{0,254}$")
RANGE_BOUNDS = ("gt", "gte", "lt", "lte")
BOOL_OCCURS = ("filter", "must", "should", "must_not")
KINDS = ("term", "terms", "range", "exists", "ids", "bool")


def check_filters(filters: Sequence[Any]) -> tuple[dict, ...]:
    """Validate filters written in the language above; returns them as fresh query DSL clauses."""
    if not isinstance(filters, (list, tuple)):
        raise QueryError("filters: a list of filter objects was expected")
    budget = [MAX_CLAUSES]
    return tuple(_clause(f, f"filters[{i}]", 1, budget) for i, f in enumerate(filters))


def _clause(f: Any, where: str, depth: int, budget: list[int]) -> dict:
    if not isinstance(f, dict) or len(f) != 1:
        raise QueryError(f"{where}: a filter is an object with exactly one key, one of {', '.join(KINDS)}")
    budget[0] -= 1
    if budget[0] < 0:
        raise QueryError(f"{where}: more than {MAX_CLAUSES} filter clauses")
    (kind, body), = f.items()
    if kind == "term":
        field, value = _one_field(body, where, kind)
        return {"term": {field: _scalar(value, f"{where}.term.{field}")}}
    if kind == "terms":
        field, values = _one_field(body, where, kind)
        if not isinstance(values, list):
            raise QueryError(f"{where}.terms.{field}: a list of literal values was expected (terms lookups "
                             "are not allowed)")
        return {"terms": {field: _scalars(values, f"{where}.terms.{field}")}}
    if kind == "range":
        field, bounds = _one_field(body, where, kind)
        if not isinstance(bounds, dict) or not bounds or set(bounds) - set(RANGE_BOUNDS):
            raise QueryError(f"{where}.range.{field}: bounds must be some of {', '.join(RANGE_BOUNDS)}")
        return {"range": {field: {k: _scalar(v, f"{where}.range.{field}.{k}") for k, v in bounds.items()}}}
    if kind == "exists":
        if not isinstance(body, dict) or set(body) != {"field"}:
            raise QueryError(f'{where}.exists: expected {{"field": "<name>"}}')
        return {"exists": {"field": _field(body["field"], f"{where}.exists.field")}}
    if kind == "ids":
        if not isinstance(body, dict) or set(body) != {"values"} or not isinstance(body["values"], list):
            raise QueryError(f'{where}.ids: expected {{"values": ["<id>", ...]}}')
        values = _scalars(body["values"], f"{where}.ids.values")
        if not all(isinstance(v, str) for v in values):
            raise QueryError(f"{where}.ids.values: ids are strings")
        return {"ids": {"values": values}}
    if kind == "bool":
        return {"bool": _bool(body, where, depth, budget)}
    raise QueryError(f"{where}: {str(kind)[:40]!r} is not an allowed filter (allowed: {', '.join(KINDS)})")


def _bool(body: Any, where: str, depth: int, budget: list[int]) -> dict:
    if depth >= MAX_DEPTH:
        raise QueryError(f"{where}.bool: filters nest at most {MAX_DEPTH} deep")
    if not isinstance(body, dict) or not body or set(body) - set(BOOL_OCCURS):
        raise QueryError(f"{where}.bool: expected some of {', '.join(BOOL_OCCURS)}, each a list of filters")
    out = {}
    for occur, clauses in body.items():
        if not isinstance(clauses, list):
            raise QueryError(f"{where}.bool.{occur}: a list of filters was expected")
        out[occur] = [_clause(c, f"{where}.bool.{occur}[{i}]", depth + 1, budget) for i, c in enumerate(clauses)]
    return out


def _one_field(body: Any, where: str, kind: str) -> tuple[str, Any]:
    if not isinstance(body, dict) or len(body) != 1:
        raise QueryError(f'{where}.{kind}: expected {{"<field>": ...}} with one field')
    (field, value), = body.items()
    return _field(field, f"{where}.{kind}"), value


def _field(name: Any, where: str) -> str:
    if not isinstance(name, str) or not FIELD.match(name):
        raise QueryError(f"{where}: {str(name)[:60]!r} is not a plain field name")
    return name


def _scalar(value: Any, where: str):
    if isinstance(value, bool) or (isinstance(value, int) and abs(value) < 2 ** 63):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    if isinstance(value, str) and len(value) <= MAX_STRING:
        return value
    raise QueryError(f"{where}: a string (at most {MAX_STRING} characters), a finite number or a boolean was "
                     f"expected, got {type(value).__name__}")


def _scalars(values: list, where: str) -> list:
    if len(values) > MAX_VALUES:
        raise QueryError(f"{where}: at most {MAX_VALUES} values")
    return [_scalar(v, f"{where}[{i}]") for i, v in enumerate(values)]

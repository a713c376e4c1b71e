"""Inference-free query mode: query weights from the tokenizer and an IDF table of the indexed corpus.

No model forward at query time: a query's weights are ``idf[token]`` for each distinct token the
tokenizer produces. The table is computed from the document vectors stored in the index (document
frequency of each feature) and kept beside it in a one-document side index ``<index>__splade_idf``,
so every query process reads the same table.
"""
from __future__ import annotations

import math
from collections import Counter
from typing import Iterable

from . import passages
from .errors import ConfigError
from .sparse import from_features

SUFFIX = "__splade_idf"


def side_index(index: str) -> str:
    return f"{index}{SUFFIX}"


def idf_table(feature_sets: Iterable[Iterable[str]]) -> tuple[dict[str, float], int]:
    """BM25-style ``idf = log(1 + (N - df + 0.5) / (df + 0.5))`` per token, over documents' token sets."""
    df: Counter = Counter()
    n = 0
    for tokens in feature_sets:
        n += 1
        df.update(set(tokens))
    return {t: math.log(1.0 + (n - d + 0.5) / (d + 0.5)) for t, d in df.items()}, n


def query_weights(tokenizer, text: str, table: dict[str, float], special: set[str]) -> dict[str, float]:
    """Distinct tokens of ``text`` weighted by IDF; tokens the corpus never had are dropped."""
    tokens = tokenizer.tokenize(text)
    return {t: table[t] for t in dict.fromkeys(tokens) if t in table and t not in special}


def build(client, index: str, field: str) -> dict:
    """Compute the table from the stored vectors of ``index`` and write it to the side index."""
    from .connection.engines import helpers

    hits = helpers(client).scan(client, index=index, query={"query": {"match_all": {}}}, _source=[field], size=1000)
    table, n = idf_table({token for part in passages.feature_objects(h["_source"].get(field) or {})
                          for token in from_features(part)} for h in hits)  # a document's tokens, all passages
    name = side_index(index)
    client.indices.delete(index=name, ignore_unavailable=True)
    client.indices.create(index=name, body={"settings": {"index": {"number_of_shards": 1}},
                                             "mappings": {"dynamic": False, "properties": {}}})
    client.index(index=name, id="idf", body={"index": index, "documents": n, "idf": table}, refresh=True)
    return {"index": name, "documents": n, "tokens": len(table)}


def load(client, index: str) -> dict[str, float]:
    from .connection.failures import client_exceptions

    _, not_found, _ = client_exceptions()
    try:
        return client.get(index=side_index(index), id="idf")["_source"]["idf"]
    except not_found:
        raise ConfigError(f"no IDF table for {index!r}: run `splade-bridge idf build {index}` first") from None

"""Retrieval evaluation on BEIR-format folders against the live cluster.

Modes: ``bm25`` (multi_match on the index's text fields), ``splade`` (the bridge's query path),
``hybrid`` (BM25 + SPLADE by reciprocal rank fusion or min-max score normalisation) and ``exact``
(in-memory SPLADE dot products over the vectors stored in the same index: the parity reference).
Metrics come from ir_measures; only judged queries are run and scored.
"""
from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import passages, query as dsl
from .connection.engines import helpers
from .errors import ConfigError
from .fusion import DEFAULT_METHOD, fuse_scores
from .searcher import Searcher, SearchOptions
from .sparse import from_features

log = logging.getLogger(__name__)

MODES = ("bm25", "splade", "two-phase", "hybrid", "exact")
RENAMED = {"two_phase": "two-phase"}  # the old spelling, accepted with a warning until 0.4
Run = dict[str, dict[str, float]]


@dataclass(frozen=True)
class Collection:
    corpus: Path
    queries: dict[str, str]   # judged queries only
    qrels: dict[str, dict[str, int]]


def load_beir(folder: str | Path, split: str = "test") -> Collection:
    folder = Path(folder)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    for p in (folder / "queries.jsonl", qrels_path):  # corpus.jsonl only to build the index (eval --ingest)
        if not p.exists():
            raise FileNotFoundError(f"{p} is missing: not a BEIR-format folder for split {split!r}")
    qrels: dict[str, dict[str, int]] = {}
    with open(qrels_path, encoding="utf-8") as f:
        rows = csv.reader(f, delimiter="\t")
        header = next(rows)
        if [h.strip() for h in header[:2]] != ["query-id", "corpus-id"]:
            raise ConfigError(f"{qrels_path}: expected a 'query-id corpus-id score' header, got {header}")
        for qid, did, score in rows:
            qrels.setdefault(qid, {})[did] = int(score)
    queries = {}
    with open(folder / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                q = json.loads(line)
                if q["_id"] in qrels:
                    queries[q["_id"]] = q["text"]
    missing = set(qrels) - set(queries)
    if missing:
        raise ConfigError(f"{len(missing)} judged queries are missing from queries.jsonl, e.g. {sorted(missing)[:3]}")
    return Collection(folder / "corpus.jsonl", queries, qrels)


# -- runs ----------------------------------------------------------------------------------------

class StoredVectors:
    """The document vectors stored in an index, as compressed sparse rows for exact scoring (numpy only:
    ``reindex`` verifies with it on a plain install). ``in_passages`` (passage mode): one row per stored
    passage, and a document's score is its best passage's."""

    def __init__(self, client, index: str, field: str, scale: float = 1.0, in_passages: bool = False):
        self.ids: list[str] = []
        self.columns: dict[str, int] = {}
        lengths, cols, vals, owners = [], [], [], []
        hits = helpers(client).scan(client, index=index, query={"query": {"match_all": {}}}, _source=[field], size=1000)
        for hit in hits:
            stored = hit["_source"].get(field) or {}
            rows = [w for _, w in passages.read(stored)] if in_passages else [stored]
            for weights in rows:
                features = from_features(weights)
                for token, value in features.items():
                    cols.append(self.columns.setdefault(token, len(self.columns)))
                    vals.append(value / scale)
                lengths.append(len(features))
                owners.append(len(self.ids))
            self.ids.append(hit["_id"])
        self._owner = np.asarray(owners, dtype=np.int64)  # the document of each row
        self._rows = np.repeat(np.arange(len(owners)), lengths)
        self._cols = np.asarray(cols, dtype=np.int64)
        self._vals = np.asarray(vals, dtype=np.float64)

    def scores(self, tokens: dict[str, float]) -> np.ndarray:
        """Every document's dot product with ``tokens`` (a sparse matrix times a dense vector); in passage
        mode, its best passage's."""
        q = np.zeros(max(1, len(self.columns)))
        for t, w in tokens.items():
            col = self.columns.get(t)
            if col is not None:
                q[col] = w
        rows = np.bincount(self._rows, weights=self._vals * q[self._cols], minlength=len(self._owner))
        if len(self._owner) == len(self.ids):  # one row per document
            return rows
        best = np.zeros(len(self.ids))
        np.maximum.at(best, self._owner, rows)
        return best

    def top(self, tokens: dict[str, float], k: int) -> dict[str, float]:
        s = self.scores(tokens)
        k = min(k, len(s))
        idx = np.argpartition(-s, k - 1)[:k] if k else []
        return {self.ids[i]: float(s[i]) for i in sorted(idx, key=lambda i: -s[i]) if s[i] > 0}


def bm25_run(client, index: str, fields: list[str], queries: dict[str, str], k: int) -> Run:
    run = {}
    for qid, text in queries.items():
        hits = client.search(index=index, body=dsl.match_query(text, fields, size=k))["hits"]["hits"]
        run[qid] = {h["_id"]: float(h["_score"]) for h in hits}
    return run


def splade_run(searcher: Searcher, queries: dict[str, str], k: int, mode: str = "splade") -> Run:
    opts = SearchOptions(size=k, source=False, mode=mode)
    return {qid: {h.id: h.score for h in searcher.search(text, opts)} for qid, text in queries.items()}


def exact_run(searcher: Searcher, vectors: StoredVectors, queries: dict[str, str], k: int) -> Run:
    """The same query tokens the cluster gets (after clause budget), scored in memory."""
    run = {}
    for qid, text in queries.items():
        _, used, _ = searcher.build(text, SearchOptions(size=k))
        run[qid] = vectors.top(used, k)
    return run


def fuse(a: Run, b: Run, method: str = DEFAULT_METHOD, k: int = 100, rrf_k: int = 60) -> Run:
    """Hybrid of two runs, query by query (``fusion.fuse_scores``)."""
    return {qid: fuse_scores(a.get(qid, {}), b.get(qid, {}), method, k, rrf_k) for qid in set(a) | set(b)}


# -- metrics -------------------------------------------------------------------------------------

def score(run: Run, qrels: dict[str, dict[str, int]], metrics: Iterable[str]) -> dict[str, float]:
    import ir_measures

    measures = [ir_measures.parse_measure(m) for m in metrics]
    judged = {q: r for q, r in run.items() if q in qrels}
    agg = ir_measures.calc_aggregate(measures, qrels, judged)
    return {str(m): float(agg[m]) for m in measures}


def write_trec(run: Run, path: Path, tag: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for qid in sorted(run):
            for rank, (did, s) in enumerate(sorted(run[qid].items(), key=lambda kv: -kv[1]), 1):
                f.write(f"{qid} Q0 {did} {rank} {s:.6f} {tag}\n")


def _renamed(mode: str) -> str:
    if mode in RENAMED:
        log.warning("mode %r is now called %r; the old name goes in 0.4", mode, RENAMED[mode])
    return RENAMED.get(mode, mode)


def evaluate(client, searcher: Searcher, collection: Collection, modes: Iterable[str],
             metrics: list[str], depth: int = 100, hybrid: str = DEFAULT_METHOD,
             progress: Callable[[str], None] | None = None) -> tuple[dict[str, dict[str, float]], dict[str, Run]]:
    asked = list(dict.fromkeys(modes))  # results and runs keep the names asked, old spellings included
    modes = [_renamed(m) for m in asked]
    unknown = set(modes) - set(MODES)
    if unknown:
        raise ConfigError(f"unknown modes {sorted(unknown)}; choose from {MODES}")
    fields = list(searcher.stamp.text_fields)
    runs: dict[str, Run] = {}
    needs = set(modes) | ({"bm25", "splade"} if "hybrid" in modes else set())
    for mode in ("bm25", "splade", "two-phase", "exact"):
        if mode not in needs:
            continue
        if progress:
            progress(mode)
        if mode == "bm25":
            runs[mode] = bm25_run(client, searcher.index, fields, collection.queries, depth)
        elif mode in ("splade", "two-phase"):
            runs[mode] = splade_run(searcher, collection.queries, depth, mode)
        else:
            vectors = StoredVectors(client, searcher.index, searcher.field, searcher.scale,
                                    searcher.stamp.model.passages)
            runs[mode] = exact_run(searcher, vectors, collection.queries, depth)
    if "hybrid" in modes:
        runs["hybrid"] = fuse(runs["bm25"], runs["splade"], hybrid, depth)
    results = {a: score(runs[m], collection.qrels, metrics) for a, m in zip(asked, modes)}
    return results, {a: runs[m] for a, m in zip(asked, modes)}

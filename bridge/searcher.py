"""Query side at the cluster edge: expand text, check the index stamp, search, explain hits."""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Callable

from . import idf, native, passages, query
from .config import PruneConfig
from .connection.client import clause_budget
from .connection.engines import server_capabilities
from .connection.failures import client_exceptions
from .errors import ModelMismatch, QueryError
from .expansion import Expander
from .fusion import fuse_scores
from .hits import Hit, Hits, explain_hit
from .indices import read_stamp
from .search_options import SearchOptions, TwoPhase, plan_query  # noqa: F401 (TwoPhase: re-exported)
from .sparse import from_features

log = logging.getLogger(__name__)


class Searcher:
    """Searches one index or alias made (or enabled) by splade-bridge, with a matching encoder.

    It follows an alias: the name is resolved to its concrete index and stamp when the searcher opens, again once
    ``follow_seconds`` have passed, and at once when the concrete index is gone; every request goes to the concrete
    index so resolved, never to the name. A query expanded by this encoder therefore only reaches an index made by
    its model: after ``reindex`` moves the alias to an index of another model, the searcher keeps answering from
    the index it knew for at most ``follow_seconds``, then raises ``ModelMismatch``. Each ``Hits`` names the
    concrete index and model that answered."""

    def __init__(self, client, encoder, index: str, allow_model_mismatch: bool = False,
                 budget: int | None = None, inference_free: bool = False, follow_seconds: float = 2.0,
                 clock: Callable[[], float] = time.monotonic):
        self.client, self.encoder, self.index = client, encoder, index
        self.allow_model_mismatch, self.inference_free = allow_model_mismatch, inference_free
        self.follow_seconds, self._clock = follow_seconds, clock
        self.concrete_index = None
        self.capabilities = server_capabilities(client)
        self.budget = budget if budget is not None else clause_budget(client)
        self._resolve()

    def _resolve(self) -> None:
        concrete, stamp, field_type = read_stamp(self.client, self.index)
        try:
            stamp.check_encoder(concrete, self.encoder.stamp)
        except ModelMismatch as exc:
            if not self.allow_model_mismatch:
                raise
            log.warning("%s", exc)
        if concrete != self.concrete_index:
            if self.concrete_index is not None:
                log.warning("%s now points at %s (was %s)", self.index, concrete, self.concrete_index)
            table = idf.load(self.client, concrete) if self.inference_free else None
            self.expander = Expander(self.encoder, table)
        self.concrete_index, self.stamp, self.field_type = concrete, stamp, field_type
        self.scale = stamp.scale
        self._resolved_at = self._clock()

    def follow(self, now: bool = False) -> None:
        """Resolve the name again if ``follow_seconds`` have passed (or ``now``)."""
        if now or self._clock() - self._resolved_at >= self.follow_seconds:
            self._resolve()

    def _search(self, body: dict) -> dict:
        """One search of the concrete index; if it is gone (deleted after the alias moved), once more after
        resolving the name again."""
        _, not_found, _ = client_exceptions()
        try:
            return self.client.search(index=self.concrete_index, body=body)
        except not_found:
            before = self.concrete_index
            self.follow(now=True)
            if self.concrete_index == before:
                raise
            return self.client.search(index=self.concrete_index, body=body)

    @property
    def field(self) -> str:
        return self.stamp.vector_field

    def expand(self, text: str, prune_cfg: PruneConfig = PruneConfig()) -> dict[str, float]:
        """Query tokens (plain, not key-encoded) and weights: SPLADE's, or IDF's in inference-free mode
        (``expansion.Expander``, the one way in)."""
        return self.expander.tokens(text, prune_cfg)

    def build(self, text: str, opts: SearchOptions = SearchOptions()) -> tuple[dict, dict[str, float], float]:
        """(request body, plain query tokens used, factor with cluster score = factor x SPLADE score)."""
        return self.build_tokens(self.expand(text, opts.query_prune), opts)

    def build_tokens(self, tokens: dict[str, float],
                     opts: SearchOptions = SearchOptions()) -> tuple[dict, dict[str, float], float]:
        form = opts.form or ("sparse_vector" if self.field_type == "sparse_vector" else "rank_feature")
        if form not in self.capabilities["query_forms"]:
            raise QueryError(f"query form {form!r} is not supported by {self.capabilities['engine']} "
                             f"{self.capabilities['version']} (supported: {self.capabilities['query_forms']})")
        opts = replace(opts, form=form)
        if opts.mode == "two-phase" and self._native_two_phase(opts):
            body, used, factor = plan_query(tokens, self.field, replace(opts, mode="splade"), scale=self.scale,
                                            budget=self.budget, in_passages=self.stamp.model.passages)
            scoring = body["query"]["bool"]["must"][0] if opts.filters else body["query"]
            body = {**native.two_phase_body(scoring, opts.size, opts.filters, opts.two_phase.ratio,
                                            opts.two_phase.window), **({"_source": body["_source"]}
                                                                       if "_source" in body else {})}
        else:
            body, used, factor = plan_query(tokens, self.field, opts, scale=self.scale, budget=self.budget,
                                            in_passages=self.stamp.model.passages)
        if not opts.explain and opts.source is True and not self.stamp.source_excludes_vector:
            body["_source"] = {"excludes": [self.field]}
        return body, used, factor

    def search(self, text: str, opts: SearchOptions = SearchOptions()) -> "Hits":
        self.follow()
        return self.search_tokens(self.expand(text, opts.query_prune), opts, text=text)

    def search_tokens(self, tokens: dict[str, float], opts: SearchOptions = SearchOptions(),
                      text: str | None = None) -> "Hits":
        """Hits for expanded ``tokens``; bm25 and hybrid modes also need the ``text`` (BM25's query)."""
        self.follow()
        if opts.mode in ("bm25", "hybrid") and text is None:
            raise QueryError(f"{opts.mode} search needs the query text (BM25 searches the index's text fields)")
        if opts.mode == "hybrid":
            return self._hybrid(text, tokens, opts)
        if opts.mode == "bm25":  # the tokens are only used to explain each hit's SPLADE score
            body, used, factor = self.bm25_body(text, opts), tokens, 1.0
        else:
            body, used, factor = self.build_tokens(tokens, opts)
        resp = self._search(body)
        two_phase = ("native" if "search_pipeline" in body else "rescore") if opts.mode == "two-phase" else None
        hits = Hits(shards=resp.get("_shards", {}), timed_out=bool(resp.get("timed_out")), two_phase=two_phase,
                    index=self.concrete_index, model=self.stamp.model)
        if hits.partial:
            log.warning("partial results from %s: %s", self.index, hits.describe_partial())
        for h in resp["hits"]["hits"]:
            source = dict(h.get("_source") or {})
            explained, splade, passage = None, None, None
            if opts.explain:
                features = source.pop(self.field, None)
                if features is None:
                    raise QueryError(f"index {self.index!r} does not keep {self.field!r} in _source; "
                                     "explain needs the stored document weights")
                passage, doc = self._stored_weights(features, used)
                explained = explain_hit(used, doc, opts.explain_top)
                splade = sum(w * doc[t] for t, w in used.items() if t in doc)
            hits.append(Hit(h["_id"], h["_score"] / factor, source, explained, splade, passage))
        return hits

    def _stored_weights(self, stored, query_tokens: dict[str, float]) -> tuple[int | None, dict[str, float]]:
        """(passage offset, token weights) of a hit's stored vector; in passage mode, of the passage that
        scores highest for ``query_tokens`` (the one that gave the hit its score)."""
        if not self.stamp.model.passages:
            return None, {t: v / self.scale for t, v in from_features(stored).items()}
        parts = [(offset, {t: v / self.scale for t, v in from_features(weights).items()})
                 for offset, weights in passages.read(stored)]
        offset, _ = passages.best(query_tokens, parts)
        return offset, dict(parts)[offset] if offset is not None else {}

    def bm25_body(self, text: str, opts: SearchOptions) -> dict:
        """BM25 over the index's text fields, with the same filters: the bm25 mode's request (which keeps the
        stored weights when explaining) and the hybrid's other side (``hybrid.depth`` deep)."""
        alone = opts.mode == "bm25"
        body = query.match_query(text, list(self.stamp.text_fields), filters=opts.filters,
                                 size=opts.size if alone else max(opts.size, opts.hybrid.depth))
        body["_source"] = True if alone and opts.explain else \
            {"excludes": [self.field]} if opts.source is True else opts.source
        return body

    def _native_two_phase(self, opts: SearchOptions) -> bool:
        why = ("passage mode: the processor splits a top-level neural_sparse query, not a nested one"
               if self.stamp.model.passages
               else "the cluster has no neural-search plugin (2.15+)" if not self.capabilities["native_two_phase"]
               else "its two-phase processor takes the neural_sparse form only" if opts.form != "neural_sparse"
               else "it has no cap on the first phase's tokens (max_first)" if opts.two_phase.max_first
               else "it needs a page size of at least 1" if opts.size < 1 else "")
        return native.use_native(opts.native, not why, why)

    def native_hybrid_body(self, text: str, tokens: dict[str, float], opts: SearchOptions) -> dict | None:
        """The one request of OpenSearch's ``hybrid`` query (fused by the cluster, neural-search installed), or
        None where the fusion happens client-side (see ``opts.native``)."""
        why = ("passage mode: its nested query is not verified inside the hybrid query"
               if self.stamp.model.passages
               else "the cluster has no neural-search plugin (2.19+)" if not self.capabilities["native_hybrid"]
               else "--explain needs each side's score, which a fused answer lacks" if opts.explain else "")
        if not native.use_native(opts.native, not why, why):
            return None
        h = opts.hybrid
        learned, _, _ = self.build_tokens(tokens, replace(opts, mode="splade", filters=()))
        lexical = self.bm25_body(text, replace(opts, filters=()))
        body = native.hybrid_body(lexical["query"], learned["query"], opts.size, h.depth, h.method, h.rrf_k,
                                  opts.filters)
        body["_source"] = lexical["_source"]
        return body

    def _hybrid(self, text: str, tokens: dict[str, float], opts: SearchOptions) -> "Hits":
        """Natively where the cluster can (``native_hybrid_body``), else both requests at once (the BM25 one on a
        second thread), fused client-side."""
        body = self.native_hybrid_body(text, tokens, opts)
        if body is not None:
            return self._native_hybrid(body, opts)
        side = replace(opts, mode="splade", size=max(opts.size, opts.hybrid.depth))
        with ThreadPoolExecutor(max_workers=1) as pool:
            lexical = pool.submit(self.client.search, index=self.concrete_index, body=self.bm25_body(text, opts))
            learned = self.search_tokens(tokens, side)
            resp = lexical.result()
        bm25 = {h["_id"]: float(h["_score"]) for h in resp["hits"]["hits"]}
        sources = {h["_id"]: dict(h.get("_source") or {}) for h in resp["hits"]["hits"]}
        splade = {h.id: h.score for h in learned}
        by_id = {h.id: h for h in learned}
        h = opts.hybrid
        lexical_hits = Hits(shards=resp.get("_shards", {}), timed_out=bool(resp.get("timed_out")))
        worse = lexical_hits if lexical_hits.partial else learned
        hits = Hits(shards=worse.shards, timed_out=worse.timed_out, fusion=f"client-side {h.method}",
                    index=learned.index, model=learned.model)
        for did, fused in fuse_scores(bm25, splade, h.method, opts.size, h.rrf_k).items():
            parts = (("bm25", bm25.get(did, 0.0)), ("splade", splade.get(did, 0.0)))
            tokens_part = by_id[did].explain or () if did in by_id else ()
            source = by_id[did].source if did in by_id else sources.get(did, {})
            splade_score, passage = (by_id[did].splade, by_id[did].passage) if did in by_id else (None, None)
            hits.append(Hit(did, fused, source, parts + tuple(tokens_part) if opts.explain else None, splade_score,
                            passage))
        return hits

    def _native_hybrid(self, body: dict, opts: SearchOptions) -> "Hits":
        resp = self._search(body)
        hits = Hits(shards=resp.get("_shards", {}), timed_out=bool(resp.get("timed_out")),
                    fusion=f"native {opts.hybrid.method}", index=self.concrete_index, model=self.stamp.model)
        if hits.partial:
            log.warning("partial results from %s: %s", self.index, hits.describe_partial())
        hits.extend(Hit(x["_id"], float(x["_score"]), dict(x.get("_source") or {})) for x in resp["hits"]["hits"])
        return hits

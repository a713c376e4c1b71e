"""Query side at the cluster edge: expand text, check the index stamp, search, explain hits."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Sequence

from . import idf, query
from .config import PruneConfig
from .connection.client import clause_budget
from .connection.engines import server_capabilities
from .errors import ConfigError, ModelMismatch, QueryError
from .filters import check_filters
from .indices import read_stamp
from .sparse import LINEAR_MAX_WEIGHT, KeyCodec, fit_query_weights, from_features, prune

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchOptions:
    size: int = 10
    form: str | None = None  # None: rank_feature on rank_features fields, sparse_vector on sparse_vector fields
    filters: tuple[dict, ...] = ()
    source: bool | tuple[str, ...] = True
    explain: bool = False
    explain_top: int = 5
    query_prune: PruneConfig = field(default_factory=PruneConfig)

    def __post_init__(self) -> None:
        if self.form is not None and self.form not in query.FORMS:
            raise ConfigError(f"form must be one of {query.FORMS}, got {self.form!r}")
        if self.size < 0 or self.explain_top < 1:
            raise ConfigError("size must be >= 0 and explain_top >= 1")
        object.__setattr__(self, "filters", check_filters(self.filters))  # only the filter language, as DSL


class Hits(list):
    """The hits of one search, best first, with how complete they are: ``partial`` when some shards failed
    (a node lost, say) or the search timed out — such results are reported, never passed off as whole."""

    def __init__(self, hits=(), shards: dict | None = None, timed_out: bool = False):
        super().__init__(hits)
        self.shards, self.timed_out = dict(shards or {}), timed_out

    @property
    def partial(self) -> bool:
        return self.timed_out or bool(self.shards.get("failed")) or \
            self.shards.get("successful", 0) + self.shards.get("skipped", 0) < self.shards.get("total", 0)

    def describe_partial(self) -> str:
        total, ok = self.shards.get("total", 0), self.shards.get("successful", 0) + self.shards.get("skipped", 0)
        return f"{total - ok} of {total} shards did not answer" + ("; the search timed out" if self.timed_out else "")


@dataclass(frozen=True)
class Hit:
    id: str
    score: float  # SPLADE dot product (cluster score with query scaling undone)
    source: dict
    explain: tuple[tuple[str, float], ...] | None = None

    def as_dict(self) -> dict:
        out = {"_id": self.id, "_score": self.score, **({"_source": self.source} if self.source else {})}
        if self.explain is not None:
            out["explain"] = [{"token": t, "contribution": c} for t, c in self.explain]
        return out


def explain_hit(query_tokens: dict[str, float], doc_tokens: dict[str, float],
                top: int = 5) -> tuple[tuple[str, float], ...]:
    """Top contributions ``q[t] * d[t]`` of one hit, computed client-side."""
    contrib = [(t, w * doc_tokens[t]) for t, w in query_tokens.items() if t in doc_tokens]
    contrib.sort(key=lambda tc: (-tc[1], tc[0]))
    return tuple(contrib[:top])


def plan_query(tokens: dict[str, float], field: str, opts: SearchOptions = SearchOptions(), scale: float = 1.0,
               budget: int | None = None) -> tuple[dict, dict[str, float], float]:
    """Pure: plain query tokens -> (request body, tokens kept, score factor).

    Weights are divided by the index's quantization scale, cut to the clause budget (largest kept) and,
    for ``neural_sparse``, scaled into (0, 64]; ``cluster score / factor`` is the SPLADE score.
    """
    form = opts.form or "rank_feature"
    stored_scale = {KeyCodec.encode(t): w / scale for t, w in tokens.items()}
    max_weight = LINEAR_MAX_WEIGHT if form == "neural_sparse" else float("inf")
    weights, factor = fit_query_weights(stored_scale, max_weight=max_weight, budget=budget)
    used = {KeyCodec.decode(k): tokens[KeyCodec.decode(k)] for k in weights}
    source: bool | Sequence[str] = True if opts.explain else opts.source
    body = query.search_body(query.scoring_query(form, field, weights), size=opts.size,
                             filters=opts.filters, source=source)
    return body, used, factor


class Searcher:
    """Searches one index (or alias) created by splade-bridge with a matching encoder."""

    def __init__(self, client, encoder, index: str, allow_model_mismatch: bool = False,
                 budget: int | None = None, inference_free: bool = False):
        self.client, self.encoder, self.index = client, encoder, index
        self.concrete_index, self.stamp, self.field_type = read_stamp(client, index)
        try:
            self.stamp.check_encoder(index, encoder.stamp)
        except ModelMismatch as exc:
            if not allow_model_mismatch:
                raise
            log.warning("%s", exc)
        self.capabilities = server_capabilities(client)
        self.budget = budget if budget is not None else clause_budget(client)
        self.scale = self.stamp.scale
        self.idf = idf.load(client, self.concrete_index) if inference_free else None

    @property
    def field(self) -> str:
        return self.stamp.vector_field

    def expand(self, text: str, prune_cfg: PruneConfig = PruneConfig()) -> dict[str, float]:
        """Query tokens (plain, not key-encoded) and weights: SPLADE's, or IDF's in inference-free mode.
        The text is only ever model input: no query syntax is parsed from it."""
        if not isinstance(text, str) or not text.strip():
            raise QueryError("the query is empty")
        if self.idf is not None:
            tokens = idf.query_weights(self.encoder.query_tokenizer, text, self.idf, self.encoder.special_tokens)
        else:
            tokens = self.encoder.tokens(prune(self.encoder.encode_query(text), prune_cfg))
        if not tokens:
            raise QueryError(f"the query {text[:80]!r} expands to no terms of the index: nothing to match")
        return tokens

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
        body, used, factor = plan_query(tokens, self.field, opts, scale=self.scale, budget=self.budget)
        if not opts.explain and opts.source is True and not self.stamp.source_excludes_vector:
            body["_source"] = {"excludes": [self.field]}
        return body, used, factor

    def search(self, text: str, opts: SearchOptions = SearchOptions()) -> "Hits":
        return self.search_tokens(self.expand(text, opts.query_prune), opts)

    def search_tokens(self, tokens: dict[str, float], opts: SearchOptions = SearchOptions()) -> "Hits":
        body, used, factor = self.build_tokens(tokens, opts)
        resp = self.client.search(index=self.index, body=body)
        hits = Hits(shards=resp.get("_shards", {}), timed_out=bool(resp.get("timed_out")))
        if hits.partial:
            log.warning("partial results from %s: %s", self.index, hits.describe_partial())
        for h in resp["hits"]["hits"]:
            source = dict(h.get("_source") or {})
            explained = None
            if opts.explain:
                features = source.pop(self.field, None)
                if features is None:
                    raise QueryError(f"index {self.index!r} does not keep {self.field!r} in _source; "
                                     "explain needs the stored document weights")
                doc = {t: v / self.scale for t, v in from_features(features).items()}
                explained = explain_hit(used, doc, opts.explain_top)
            hits.append(Hit(h["_id"], h["_score"] / factor, source, explained))
        return hits

"""How a search is asked for: its options (``SearchOptions``, ``TwoPhase``) and the pure plan of a SPLADE request
(``plan_query``): tokens in, request body out."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from . import native, passages, query
from .config import DEFAULT_QUERY_TOP_K, PruneConfig
from .errors import ConfigError, QueryError
from .filters import check_filters
from .fusion import Hybrid
from .sparse import LINEAR_MAX_WEIGHT, KeyCodec, fit_query_weights


MODES = ("bm25", "splade", "two-phase", "hybrid")


@dataclass(frozen=True)
class TwoPhase:
    """Two-phase search in standard DSL: the tokens weighing >= ``ratio`` x the largest (at most ``max_first``)
    find and rank the hits; the rest are added in a ``rescore`` of the top ``window`` (at least ``size``)."""

    ratio: float = 0.4  # OpenSearch's neural_sparse two-phase default
    window: int = 100
    max_first: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.ratio <= 1.0:
            raise ConfigError(f"two-phase ratio must be in (0, 1], got {self.ratio}")
        if self.window < 1 or (self.max_first is not None and self.max_first < 1):
            raise ConfigError("two-phase window and max_first must be >= 1")


@dataclass(frozen=True)
class SearchOptions:
    size: int = 10
    form: str | None = None  # None: rank_feature on rank_features fields, sparse_vector on sparse_vector fields
    filters: tuple[dict, ...] = ()
    source: bool | tuple[str, ...] = True
    explain: bool = False
    explain_top: int = 5
    query_prune: PruneConfig = field(default_factory=lambda: PruneConfig(top_k=DEFAULT_QUERY_TOP_K))
    # "bm25": the index's text fields alone (the baseline; explained by the SPLADE terms it would score);
    # "two-phase": exact scores for the top `two_phase.window` hits, fewer postings read; "hybrid": BM25 and
    # SPLADE fused (`hybrid`: the method and depth); scores are then fused scores
    mode: str = "splade"
    two_phase: TwoPhase = field(default_factory=TwoPhase)
    hybrid: Hybrid = field(default_factory=Hybrid)
    # where two-phase and hybrid run: "auto" uses OpenSearch's neural-search plugin where installed (two-phase
    # with the neural_sparse form), "always" requires it, "never" keeps standard DSL (see native.py)
    native: str = "auto"

    def __post_init__(self) -> None:
        if self.form is not None and self.form not in query.FORMS:
            raise ConfigError(f"form must be one of {query.FORMS}, got {self.form!r}")
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.native not in native.CHOICES:
            raise ConfigError(f"native must be one of {native.CHOICES}, got {self.native!r}")
        if self.size < 0 or self.explain_top < 1:
            raise ConfigError("size must be >= 0 and explain_top >= 1")
        object.__setattr__(self, "filters", check_filters(self.filters))  # only the filter language, as DSL


def plan_query(tokens: dict[str, float], field: str, opts: SearchOptions = SearchOptions(), scale: float = 1.0,
               budget: int | None = None, in_passages: bool = False) -> tuple[dict, dict[str, float], float]:
    """Pure: plain query tokens -> (request body, tokens kept, score factor).

    Weights are divided by the index's quantization scale, cut to the clause budget (largest kept) and,
    for ``neural_sparse``, scaled into (0, 64]; ``cluster score / factor`` is the SPLADE score. ``in_passages``
    (passage mode): the scoring runs in each nested passage and a document scores its best one; two-phase's
    rescore then scores the top hits' passages with every token (a sum of two maxima over different passages
    would not be a passage's score).
    """
    if opts.mode == "bm25":
        raise QueryError("bm25 is not a SPLADE query: it searches the index's text fields (search an index)")
    form = opts.form or "rank_feature"
    stored_scale = {KeyCodec.encode(t): w / scale for t, w in tokens.items()}
    max_weight = LINEAR_MAX_WEIGHT if form == "neural_sparse" else float("inf")
    weights, factor = fit_query_weights(stored_scale, max_weight=max_weight, budget=budget)
    used = {KeyCodec.decode(k): tokens[KeyCodec.decode(k)] for k in weights}
    source: bool | Sequence[str] = True if opts.explain else opts.source
    first, rest = weights, {}
    if opts.mode == "two-phase":
        first, rest = query.split_tokens(weights, opts.two_phase.ratio, opts.two_phase.max_first)
    def scoring(part: dict[str, float]) -> dict:
        if not in_passages:
            return query.scoring_query(form, field, part)
        return passages.nested(field, query.scoring_query(form, passages.weights_path(field), part))
    body = query.search_body(scoring(first), size=opts.size, filters=opts.filters, source=source)
    if rest:
        window = max(opts.two_phase.window, opts.size)
        body["rescore"] = query.rescore(scoring(weights), window, replace=True) if in_passages else \
            query.rescore(scoring(rest), window)
    return body, used, factor

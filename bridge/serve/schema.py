"""The service's request bodies: strict (no ``true`` as a number, no number as a string) and closed (an unknown
field is refused, naming it: a misspelt ``filter`` must not silently search unfiltered)."""
from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from ..api import SEARCH_MODES

MAX_TEXT = 8192
log = logging.getLogger(__name__)


class ExpandRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    text: str = Field(min_length=1, max_length=MAX_TEXT)
    # as the CLI's --query-top-k (0 keeps all); "top_k", its old name, is accepted (and logged) until 0.4
    query_top_k: int | None = Field(default=None, ge=0, le=4096, validation_alias=AliasChoices("query_top_k", "top_k"),
                                    description="keep the k largest query weights (0 keeps all)")

    @model_validator(mode="before")
    @classmethod
    def _old_names(cls, data: Any) -> Any:
        if isinstance(data, dict) and "top_k" in data:
            log.warning("request field 'top_k' is now 'query_top_k'; the old name goes in 0.4")
        return data


class QueryRequest(ExpandRequest):
    index: str | None = Field(default=None, min_length=1, max_length=255)
    filters: list[dict[str, Any]] = Field(default_factory=list, max_length=32,
                                          description="Filters in the filter language of bridge.filters: term, "
                                                      "terms (literal values), range, exists, ids, bool of those")
    size: int = Field(default=10, ge=0, le=10_000, description="Hits to return (no 'from': ask a larger size)")
    form: Literal["rank_feature", "neural_sparse", "sparse_vector"] | None = None
    mode: Literal[SEARCH_MODES] = Field(
        default="splade", description="bm25: the index's text fields alone (the baseline); two-phase: the high-weight tokens find the hits, the rest rescore the top "
                                      "window (exact SPLADE scores there, fewer postings read); hybrid: BM25 + "
                                      "SPLADE fused by normalised score sum (/query returns both requests and the fusion)")
    native: Literal["auto", "always", "never"] = Field(
        default="auto", description="two-phase and hybrid by OpenSearch's neural-search plugin where installed "
                                    "(auto), required (always), or in standard DSL fused by the bridge (never)")
    inference_free: bool = Field(default=False, description="weigh the query's own tokens by the index's IDF table "
                                                            "(idf build) instead of running the model")


class SearchRequest(QueryRequest):
    explain: bool = Field(default=False, description="each hit's top contributing tokens and SPLADE score, and the "
                                                     "query's weighted tokens")
    explain_top: int = Field(default=5, ge=1, le=1000, description="contributing tokens per explained hit")


def describe_invalid(errors: list[dict]) -> str:
    """One line for a request that failed validation: every unknown field named, else the first problem."""
    unknown = [str(e["loc"][-1]) for e in errors if e.get("type") == "extra_forbidden" and e.get("loc")]
    if unknown:
        hint = " ('from' is not supported: ask a larger size)" if "from" in unknown else ""
        return f"unknown field{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}{hint}"
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
    return f"{where or 'body'}: {first.get('msg', 'invalid request')}"

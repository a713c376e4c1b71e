"""``splade-bridge serve``: query expansion, query DSL and search over HTTP for backends in any language.

Endpoints: ``POST /expand``, ``POST /query``, ``POST /search``, ``GET /healthz``, ``GET /metrics``
(Prometheus text). Errors are JSON ``{"error": ...}`` with a 4xx/5xx status, never a stack trace.
"""
from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from .. import api
from ..api import (DEFAULT_CLAUSE_BUDGET, BridgeError, ClusterRefused, ClusterUnreachable, ConfigError,
                   IndexNotBridged, IndexNotFound, ModelMismatch, PruneConfig, QueryError, Searcher, SearchOptions,
                   __version__, as_bridge_error, plan_query, prune)
from .batcher import BatchConfig, MicroBatcher
from .access import AccessLog
from .guard import Guard, GuardConfig, IndexAllowList

log = logging.getLogger(__name__)

MAX_TEXT = 8192

# typed errors -> HTTP status, first match wins (the one table of the service)
ERROR_STATUS: tuple[tuple[type[BaseException], int], ...] = (
    (IndexNotFound, 404),
    (ModelMismatch, 409),
    (QueryError, 400),
    (IndexNotBridged, 400),
    (ConfigError, 400),
    (ClusterUnreachable, 503),
    (ClusterRefused, 502),
)


@dataclass(frozen=True)
class ServeConfig:
    default_index: str | None = None
    indices: IndexAllowList = IndexAllowList()   # what may be searched; the default index is added to it
    guard: GuardConfig = GuardConfig()
    max_size: int = 1000
    batch: BatchConfig = BatchConfig()


class ExpandRequest(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    top_k: int | None = Field(default=None, ge=1, le=4096)


class QueryRequest(ExpandRequest):
    index: str | None = Field(default=None, min_length=1, max_length=255)
    filters: list[dict[str, Any]] = Field(default_factory=list, max_length=32,
                                          description="Filters in the filter language of bridge.filters: term, "
                                                      "terms (literal values), range, exists, ids, bool of those")
    size: int = Field(default=10, ge=0, le=10_000)
    form: Literal["rank_feature", "neural_sparse", "sparse_vector"] | None = None
    mode: Literal["splade", "two-phase", "hybrid"] = Field(
        default="splade", description="two-phase: the high-weight tokens find the hits, the rest rescore the top "
                                      "window (exact SPLADE scores there, fewer postings read); hybrid: BM25 + "
                                      "SPLADE fused by normalised score sum (/query returns both requests and the fusion)")
    native: Literal["auto", "always", "never"] = Field(
        default="auto", description="two-phase and hybrid by OpenSearch's neural-search plugin where installed "
                                    "(auto), required (always), or in standard DSL fused by the bridge (never)")


class SearchRequest(QueryRequest):
    explain: bool = False


def http_status(exc: BaseException) -> int:
    return next((status for kind, status in ERROR_STATUS if isinstance(exc, kind)), 500)


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message

    @classmethod
    def of(cls, exc: BaseException) -> "ApiError":
        """The response for a failure: its typed error's status and one-line message."""
        typed = as_bridge_error(exc)
        if not isinstance(typed, BridgeError):
            raise exc
        return cls(http_status(typed), str(typed))


def _metrics(registry: CollectorRegistry) -> dict:
    return {
        "requests": Counter("splade_requests", "HTTP requests", ["endpoint", "status"], registry=registry),
        "latency": Histogram("splade_request_seconds", "Request latency", ["endpoint"], registry=registry,
                             buckets=(.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5)),
        "batch": Histogram("splade_batch_size", "Texts per model forward", registry=registry,
                           buckets=(1, 2, 4, 8, 16, 32, 64, 128)),
        "cache": Counter("splade_expand_cache", "Expansion cache lookups", ["result"], registry=registry),
    }


def create_app(encoder, client=None, cfg: ServeConfig = ServeConfig()) -> FastAPI:
    """Build the service around a loaded encoder and an optional cluster client."""
    registry = CollectorRegistry()
    metrics = _metrics(registry)

    def observe(name: str, value: float) -> None:
        if name == "batch_size":
            metrics["batch"].observe(value)
        else:
            metrics["cache"].labels("hit" if name == "cache_hit" else "miss").inc(value)

    batcher = MicroBatcher(encoder.encode_query, cfg.batch, observe)
    searchers: dict[str, Searcher] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await batcher.start()
        yield
        await batcher.stop()  # in-flight expansions finish before shutdown completes

    app = FastAPI(title="splade-bridge", version=__version__, lifespan=lifespan,
                  description="SPLADE query expansion and query DSL for OpenSearch/Elasticsearch")

    @app.middleware("http")
    async def measure(request: Request, call_next):
        endpoint = request.url.path
        started = time.perf_counter()
        response = await call_next(request)
        metrics["requests"].labels(endpoint, str(response.status_code)).inc()
        metrics["latency"].labels(endpoint).observe(time.perf_counter() - started)
        return response

    # refusals (401, 413, 400 depth, 429) happen before parsing and are counted here
    app.add_middleware(Guard, cfg=cfg.guard,
                       on_reject=lambda path, status: metrics["requests"].labels(path, str(status)).inc())
    app.add_middleware(AccessLog)  # outside the guard: refusals are logged too
    allowed = IndexAllowList(cfg.indices.patterns + ((cfg.default_index,) if cfg.default_index else ()))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return JSONResponse({"error": f"{where or 'body'}: {first.get('msg', 'invalid request')}"}, status_code=422)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception):
        log.exception("unhandled error")
        return JSONResponse({"error": "internal error"}, status_code=500)

    async def tokens_for(req: ExpandRequest, default: PruneConfig = PruneConfig()) -> dict[str, float]:
        """The expansion, cut to ``top_k`` when asked, else by ``default`` (searches: the query default)."""
        vec = await batcher.expand(req.text)
        return encoder.tokens(prune(vec, PruneConfig(top_k=req.top_k) if req.top_k else default))

    def allowed_index(index: str | None) -> str | None:
        name = index or cfg.default_index
        if name is not None and not allowed.allows(name):
            raise ApiError(403, f"index {name[:80]!r} is not served here")
        return name

    async def searcher_for(index: str | None) -> Searcher:
        name = allowed_index(index)
        if client is None:
            raise ApiError(503, "no cluster configured (start the service with --url)")
        if not name:
            raise ApiError(400, "index: required (no default --index configured)")
        if name not in searchers:
            searchers[name] = await run_in_threadpool(_open_searcher, client, encoder, name)
        return searchers[name]

    @app.post("/expand")
    async def expand(req: ExpandRequest) -> dict:
        return {"tokens": await tokens_for(req)}

    @app.post("/query")
    async def query_dsl(req: QueryRequest) -> dict:
        allowed_index(req.index)
        opts = _options(req)
        tokens = await tokens_for(req, opts.query_prune)
        if client is not None and (req.index or cfg.default_index):
            searcher = await searcher_for(req.index)
            try:
                body, used, factor = searcher.build_tokens(tokens, opts)
                fused = searcher.native_hybrid_body(req.text, tokens, opts) if opts.mode == "hybrid" else None
            except BridgeError as exc:
                raise ApiError.of(exc) from None
            if fused is not None:  # one request; the cluster fuses (its scores are fused scores)
                return {"query": fused, "fusion": f"native {opts.hybrid.method}", "tokens": len(used)}
            if opts.mode == "hybrid":
                return {"query": body, "bm25_query": searcher.bm25_body(req.text, opts),
                        "fusion": opts.hybrid.__dict__, "tokens": len(used), "score_factor": factor}
        elif opts.mode == "hybrid":
            raise ApiError(400, "hybrid needs an index (its BM25 side searches the index's text fields)")
        else:
            body, used, factor = _plan(tokens, opts)
        return {"query": body, "tokens": len(used), "score_factor": factor}

    @app.post("/search")
    async def search(req: SearchRequest) -> dict:
        allowed_index(req.index)
        opts = _options(req, explain=req.explain)  # filters refused here, before the cluster is contacted
        searcher = await searcher_for(req.index)
        tokens = await tokens_for(req, opts.query_prune)
        started = time.perf_counter()
        hits = await run_in_threadpool(_search, searcher, tokens, opts, req.text)
        return {"hits": [h.as_dict() for h in hits], "took_ms": round(1000 * (time.perf_counter() - started), 2),
                "partial": hits.partial, "shards": hits.shards, **({"fusion": hits.fusion} if hits.fusion else {}),
                **({"two_phase": hits.two_phase} if hits.two_phase else {})}

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "model": encoder.stamp.model, "revision": encoder.stamp.revision,
                "cluster": client is not None}

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _options(req: QueryRequest, explain: bool = False) -> SearchOptions:
    try:
        return SearchOptions(size=req.size, form=req.form, filters=tuple(req.filters), explain=explain,
                             mode=req.mode, native=req.native)
    except BridgeError as exc:
        raise ApiError.of(exc) from None


def _plan(tokens: dict[str, float], opts: SearchOptions):
    try:
        return plan_query(tokens, "splade", opts, budget=DEFAULT_CLAUSE_BUDGET)
    except BridgeError as exc:
        raise ApiError.of(exc) from None


def _open_searcher(client, encoder, name: str) -> Searcher:
    try:
        return api.open_searcher(client, name, encoder=encoder)
    except Exception as exc:
        raise ApiError.of(exc) from None


def _search(searcher: Searcher, tokens: dict[str, float], opts: SearchOptions, text: str):
    try:
        return searcher.search_tokens(tokens, opts, text=text)
    except Exception as exc:
        raise ApiError.of(exc) from None

"""``splade-bridge serve``: query expansion, query DSL and search over HTTP for backends in any language.

Endpoints: ``POST /expand``, ``POST /query``, ``POST /search``, ``GET /indices`` (what is served),
``GET /healthz`` (liveness), ``GET /readyz`` (the cluster answers and the served indices' models are loaded),
``GET /metrics`` (Prometheus text), and with ``ui`` the compare page at ``GET /ui`` (``ui.py``). Errors are
JSON ``{"error": ...}`` with a 4xx/5xx status, never a stack trace (``errors.py``).

An index name may be an alias: it is resolved to its concrete index and stamp (again every ``follow_seconds``,
and at once when the concrete index is gone), the query is expanded by the model that stamp names
(``models.ModelPool``: loaded in the background, 503 with ``Retry-After`` until ready) and sent to that concrete
index. A query is never expanded by one model and scored against another's vectors; each answer names the
concrete ``index`` and the ``model`` used.
"""
from __future__ import annotations

import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.concurrency import run_in_threadpool

from .. import api
from ..api import (DEFAULT_CLAUSE_BUDGET, BridgeError, Expander, checked_query, PruneConfig, Searcher, SearchOptions,
                   StampCache, __version__, plan_query)
from .access import AccessLog
from .batcher import BatchConfig
from .errors import ApiError, install
from .guard import Guard, GuardConfig, IndexAllowList
from .metrics import service_metrics
from .models import ModelPool, PoolConfig
from . import ui
from .schema import ExpandRequest, QueryRequest, SearchRequest


@dataclass(frozen=True)
class ServeConfig:
    default_index: str | None = None
    indices: IndexAllowList = IndexAllowList()   # what may be searched; the default index is added to it
    guard: GuardConfig = GuardConfig()
    max_size: int = 1000
    batch: BatchConfig = BatchConfig()
    models: PoolConfig = field(default_factory=PoolConfig)
    follow_seconds: float = 2.0                  # how long a resolved alias is trusted before it is read again
    ui: bool = False                             # serve the compare page at /ui (ui.py)


def create_app(encoder=None, client=None, cfg: ServeConfig = ServeConfig(), load=None) -> FastAPI:
    """Build the service around an optional loaded encoder (``/expand``'s default), an optional cluster client
    and ``load(model_stamp) -> encoder`` for the models the served indices name."""
    registry = CollectorRegistry()
    metrics = service_metrics(registry)

    def observe(name: str, value: float) -> None:
        if name == "batch_size":
            metrics["batch"].observe(value)
        else:
            metrics["cache"].labels("hit" if name == "cache_hit" else "miss").inc(value)

    pool = ModelPool(load, cfg.models, cfg.batch, observe, on_load=lambda result: metrics["loads"].labels(result).inc())
    stamps = StampCache(client, cfg.follow_seconds) if client is not None else None
    searchers: dict[tuple, Searcher] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if encoder is not None:
            await pool.add(encoder, default=True)
        yield
        await pool.stop()  # in-flight expansions finish before shutdown completes

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

    # refusals (401, 408, 413, 400 depth, 429) happen before parsing and are counted here
    if cfg.ui:
        ui.install(app)
    guard = replace(cfg.guard, public=cfg.guard.public | ui.PATHS) if cfg.ui else cfg.guard
    app.add_middleware(Guard, cfg=guard,
                       on_reject=lambda path, status: metrics["requests"].labels(path, str(status)).inc())
    app.add_middleware(AccessLog)  # outside the guard: refusals are logged too
    install(app)
    allowed = IndexAllowList(cfg.indices.patterns + ((cfg.default_index,) if cfg.default_index else ()))

    def check_allowed(index: str | None) -> str | None:
        name = index or cfg.default_index
        if name is not None and not allowed.allows(name):
            raise ApiError(403, f"index {name[:80]!r} is not served here")
        return name

    def allowed_index(index: str | None) -> str:
        name = check_allowed(index)
        if client is None:
            raise ApiError(503, "no cluster configured (start the service with --url)")
        if not name:
            raise ApiError(400, "index: required (no default --index configured)")
        return name

    async def held_for(model) -> object:
        try:
            held = await pool.get(model)
        except BridgeError as exc:
            raise ApiError(503, str(exc)) from None
        if held is None:
            raise ApiError(503, f"loading query model {model.model!r}; retry shortly", retry_after=1)
        return held

    async def resolved(name: str, inference_free: bool):
        """(searcher of the concrete index behind ``name``, its held model) — the name followed as it moves."""
        def resolve():
            before = stamps.moves
            out = stamps.resolve(name)
            metrics["moves"].inc(stamps.moves - before)
            return out
        try:
            concrete, stamp, _ = await run_in_threadpool(resolve)
        except Exception as exc:
            raise ApiError.of(exc) from None
        if stamp.next_model is not None:
            pool.preload(stamp.next_model)  # a reindex to another model is under way: have it ready at the swap
        held = await held_for(stamp.model)
        key = (concrete, stamp.model.query_key(), inference_free)
        if key not in searchers:
            if len(searchers) > 64:
                searchers.clear()
            searchers[key] = await run_in_threadpool(_open_searcher, client, held.encoder, concrete, inference_free)
        return searchers[key], held

    async def tokens_of(expander: Expander, held, req: ExpandRequest, default: PruneConfig) -> dict[str, float]:
        """The one expansion step; the model forward (when there is one) is batched with concurrent requests."""
        try:
            vector = await held.batcher.expand(checked_query(req.text)) if expander.needs_model else None
            prune = default if req.query_top_k is None else PruneConfig(top_k=req.query_top_k or None)
            return expander.tokens(req.text, prune, vector)
        except BridgeError as exc:
            raise ApiError.of(exc) from None

    async def answer(req: QueryRequest, handle):
        """``handle(searcher, held, opts)`` for the index of ``req``; once more if its concrete index vanished."""
        name, opts = allowed_index(req.index), _options(req)
        for attempt in (1, 2):
            searcher, held = await resolved(name, req.inference_free)
            try:
                out = await handle(searcher, held, opts)
            except ApiError as exc:
                if exc.status != 404 or attempt == 2:
                    raise
                stamps.forget(name)  # the alias moved and the index it named is gone: follow it now
                continue
            return {**out, "index": searcher.concrete_index,
                    "model": {"model": searcher.stamp.model.model, "revision": searcher.stamp.model.revision}}

    @app.post("/expand")
    async def expand(req: ExpandRequest) -> dict:
        if client is not None and cfg.default_index and (pool.default is None):
            searcher, held = await resolved(allowed_index(None), False)
            return {"tokens": await tokens_of(searcher.expander, held, req, PruneConfig())}
        if pool.default is None:
            raise ApiError(400, "no model to expand with: start the service with --model or --index")
        return {"tokens": await tokens_of(Expander(pool.default.encoder), pool.default, req, PruneConfig())}

    @app.post("/query")
    async def query_dsl(req: QueryRequest) -> dict:
        if client is None or not (req.index or cfg.default_index):
            check_allowed(req.index)
            opts = _options(req)
            if opts.mode in ("bm25", "hybrid"):
                raise ApiError(400, f"{opts.mode} needs an index (BM25 searches the index's text fields)")
            if pool.default is None:
                raise ApiError(400, "no model to expand with: start the service with --model or --index")
            tokens = await tokens_of(Expander(pool.default.encoder), pool.default, req, opts.query_prune)
            body, used, factor = _plan(tokens, opts)
            return {"query": body, "tokens": len(used), "score_factor": factor}

        async def handle(searcher: Searcher, held, opts: SearchOptions) -> dict:
            if opts.mode == "bm25":
                return {"query": searcher.bm25_body(req.text, opts)}
            tokens = await tokens_of(searcher.expander, held, req, opts.query_prune)
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
            return {"query": body, "tokens": len(used), "score_factor": factor}

        return await answer(req, handle)

    @app.post("/search")
    async def search(req: SearchRequest) -> dict:
        async def handle(searcher: Searcher, held, opts: SearchOptions) -> dict:
            tokens = await tokens_of(searcher.expander, held, req, opts.query_prune)
            started = time.perf_counter()
            hits = await run_in_threadpool(_search, searcher, tokens, opts, req.text)
            return {**hits.as_dict(), "took_ms": round(1000 * (time.perf_counter() - started), 2),
                    # explained: also the query's weighted tokens and the text fields the model read
                    **({"tokens": tokens, "text_fields": list(searcher.stamp.text_fields)} if req.explain else {})}

        return await answer(req, handle)

    @app.get("/indices")
    async def served() -> dict:
        """The indices and aliases served by name, the patterns that also are, and the default index."""
        return {"indices": allowed.names(), "patterns": [p for p in allowed.patterns if p not in allowed.names()],
                "default": cfg.default_index}

    @app.get("/healthz")
    async def healthz() -> dict:
        """Liveness: the process answers (``/readyz`` says whether it can serve)."""
        default = pool.default.encoder.stamp if pool.default else None
        return {"status": "ok", "model": default.model if default else None,
                "revision": default.revision if default else None, "cluster": client is not None}

    readiness: list = [0.0, None]  # (when, answer): probes exempt from the in-flight cap share one check a second

    @app.get("/readyz")
    async def readyz():
        """Ready when the cluster answers and the model of every named served index is loaded."""
        if readiness[1] is None or time.monotonic() - readiness[0] >= 1.0:
            readiness[:] = [time.monotonic(), await check_ready()]
        status, body = readiness[1]
        return JSONResponse(body, status_code=status, headers={"retry-after": "1"} if status == 503 else None)

    async def check_ready() -> tuple[int, dict]:
        checks: dict = {}
        if client is not None:
            try:
                await run_in_threadpool(lambda: client.info(request_timeout=2))
                checks["cluster"] = "ok"
            except Exception as exc:
                checks["cluster"] = f"unreachable: {api.describe(exc)}"
            for name in allowed.names() if checks["cluster"] == "ok" else ():
                try:
                    _, stamp, _ = await run_in_threadpool(stamps.resolve, name)
                except Exception as exc:
                    checks[name] = api.describe(exc)
                    continue
                if pool.loaded(stamp.model):
                    checks[name] = "ok"
                else:
                    pool.preload(stamp.model)
                    checks[name] = f"loading model {stamp.model.model}"
        elif pool.default is None:
            checks["model"] = "no model"
        failing = {k: v for k, v in checks.items() if v != "ok"}
        if failing:
            return 503, {"error": "not ready: " + "; ".join(f"{k}: {v}" for k, v in failing.items()), "checks": checks}
        return 200, {"status": "ready", "checks": checks}

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _options(req: QueryRequest) -> SearchOptions:
    try:
        return SearchOptions(size=req.size, form=req.form, filters=tuple(req.filters), mode=req.mode, native=req.native,
                             explain=getattr(req, "explain", False), explain_top=getattr(req, "explain_top", 5))
    except BridgeError as exc:
        raise ApiError.of(exc) from None


def _plan(tokens: dict[str, float], opts: SearchOptions):
    try:
        return plan_query(tokens, "splade", opts, budget=DEFAULT_CLAUSE_BUDGET)
    except BridgeError as exc:
        raise ApiError.of(exc) from None


def _open_searcher(client, encoder, name: str, inference_free: bool) -> Searcher:
    try:
        return api.open_searcher(client, name, encoder=encoder, inference_free=inference_free)
    except Exception as exc:
        raise ApiError.of(exc) from None


def _search(searcher: Searcher, tokens: dict[str, float], opts: SearchOptions, text: str):
    try:
        return searcher.search_tokens(tokens, opts, text=text)
    except Exception as exc:
        raise ApiError.of(exc) from None

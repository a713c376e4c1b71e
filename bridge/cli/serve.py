"""``splade-bridge serve``."""
from __future__ import annotations

import ipaddress
import logging

import click

from .. import api
from .logs import say
from .options import BACKEND, PRECISION, connection_options, encoding, model_option

log = logging.getLogger(__name__)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=int)
@model_option(f"the first --index's stamped model; without a cluster, {api.DEFAULT_MODEL}",
              what="Model loaded at start, for /expand and the indices stamped with it (each served index's "
                   "queries are expanded by the model its stamp names, loaded when first needed)")
@click.option("--allow-model", "allowed_models", multiple=True, metavar="PATTERN",
              help="Only load models matching this pattern (repeatable; default: any an index's stamp names).")
@BACKEND
@PRECISION
@click.option("--index", "indices", multiple=True,
              help="Index or alias the service serves (repeatable); the first is used when a request names none.")
@click.option("--allow-index", "patterns", multiple=True, metavar="PATTERN",
              help="Also serve indices matching this pattern, e.g. 'docs-*' (repeatable). Any other index: 403.")
@click.option("--auth-token-file", type=click.Path(dir_okay=False, exists=True), default=None,
              help="File of bearer tokens, one per line: requests without one get 401 (/healthz excepted). "
                   "Tokens are never logged.")
@click.option("--max-in-flight", default=64, show_default=True, type=click.IntRange(1),
              help="Requests handled at once; more get 429 with Retry-After (/healthz excepted).")
@click.option("--max-batch", default=32, show_default=True, help="Texts per model forward (1 = no batching).")
@click.option("--max-wait-ms", default=2.0, show_default=True, help="Longest wait to fill a batch.")
@click.option("--cache-size", default=10_000, show_default=True, help="LRU cache of expanded texts (0 = off).")
@click.option("--max-body-bytes", default=64 * 1024, show_default=True,
              help="Larger request bodies get 413 (counted as read, chunked or not).")
@click.option("--max-json-depth", default=32, show_default=True, type=click.IntRange(1),
              help="Request JSON nested deeper gets 400.")
@click.option("--body-timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds a request body may take to arrive (then 408); an arriving body holds no in-flight slot.")
@click.option("--ui", is_flag=True, default=False,
              help="Serve the compare page at /ui: BM25, SPLADE and hybrid hits side by side, with the query's "
                   "expansion and each hit's contributing terms (the same API, allow-list and token).")
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One log record per request (method, path, status, duration, client, request id) on stderr; "
                   "with --log-format json, one JSON object each.")
@connection_options()
@click.pass_obj
def serve_cmd(settings, host, port, model, allowed_models, backend, precision, indices, patterns, auth_token_file,
              max_in_flight, max_batch, max_wait_ms, cache_size, max_body_bytes, max_json_depth, body_timeout,
              ui, access_log):
    """Serve /expand, /query, /search, /indices, /healthz, /readyz and /metrics over HTTP (OpenAPI at /docs;
    with --ui, the compare page at /ui).

    A cluster is used only when --url (or BRIDGE_URL) is given; /search needs one. Only the indices named
    by --index/--allow-index are served, and filters are limited to the filter language (term, terms,
    range, exists, ids, bool). An alias is followed when it moves (re-read every 2 s): queries are expanded
    by the model of the index it names, never another (503 with Retry-After while that model loads)."""
    try:
        import uvicorn

        from ..serve.app import ServeConfig, create_app
        from ..serve.batcher import BatchConfig
        from ..serve.guard import GuardConfig, IndexAllowList
        from ..serve.models import PoolConfig
    except ImportError as exc:
        raise api.MissingExtra(exc.name, "serve") from None

    tokens = frozenset()
    if auth_token_file:
        with open(auth_token_file, encoding="utf-8") as f:
            tokens = frozenset(t.strip() for t in f if t.strip() and not t.startswith("#"))
        if not tokens:
            raise click.BadParameter("the file holds no token", param_hint="--auth-token-file")
    elif not _loopback(host):
        log.warning("serving on %s without --auth-token-file: any client that reaches it can search the "
                    "served indices with this service's cluster credentials", host)
    default_index = indices[0] if indices else None
    client, stamp = None, None
    if settings.url_given:
        client = settings.client()
        if default_index:
            stamp = api.open_index(client, default_index)
    def load(model_stamp):  # the model an index's stamp names, with its pooling, precision and long documents
        return api.load_encoder(stamp=model_stamp, **encoding(backend, precision))

    encoder = api.load_encoder(model, **encoding(backend, precision)) if model or not stamp else load(stamp.model)
    batch = BatchConfig(max_batch=max_batch, max_wait_ms=max_wait_ms, cache_size=cache_size)
    cfg = ServeConfig(default_index=default_index, indices=IndexAllowList(tuple(indices) + tuple(patterns)),
                      guard=GuardConfig(max_body_bytes=max_body_bytes, max_json_depth=max_json_depth,
                                        max_in_flight=max_in_flight, tokens=tokens, body_seconds=body_timeout),
                      batch=batch, models=PoolConfig(allowed=tuple(allowed_models)), ui=ui)
    app = create_app(encoder, client, cfg, load=load)
    if access_log:
        logging.getLogger("bridge.serve.access").setLevel(logging.INFO)
    say(f"serving {encoder.stamp.model} on http://{host}:{port}" + (f" (compare page: http://{host}:{port}/ui)"
                                                                   if ui else ""))
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

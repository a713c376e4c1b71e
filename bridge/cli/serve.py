"""``splade-bridge serve``."""
from __future__ import annotations

import ipaddress
import logging

import click

from .. import api
from .logs import say
from .options import BACKEND, PRECISION, connection_options, encoding

log = logging.getLogger(__name__)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--model", envvar="BRIDGE_MODEL", default=None,
              help="Query model (default: the first --index's stamped model, else rasyosef/splade-small).")
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
@click.option("--access-log/--no-access-log", default=True, show_default=True,
              help="One log record per request (method, path, status, duration, client, request id) on stderr; "
                   "with --log-format json, one JSON object each.")
@connection_options()
@click.pass_obj
def serve_cmd(settings, host, port, model, backend, precision, indices, patterns, auth_token_file, max_in_flight, max_batch, max_wait_ms,
              cache_size, max_body_bytes, max_json_depth, access_log):
    """Serve /expand, /query, /search, /healthz and /metrics over HTTP (OpenAPI at /docs).

    A cluster is used only when --url (or BRIDGE_URL) is given; /search needs one. Only the indices named
    by --index/--allow-index are served, and filters are limited to the filter language (term, terms,
    range, exists, ids, bool)."""
    try:
        import uvicorn

        from ..serve.app import ServeConfig, create_app
        from ..serve.batcher import BatchConfig
        from ..serve.guard import GuardConfig, IndexAllowList
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
    encoder = api.load_encoder(model, stamp=stamp, **encoding(backend, precision))
    cfg = ServeConfig(default_index=default_index, indices=IndexAllowList(tuple(indices) + tuple(patterns)),
                      guard=GuardConfig(max_body_bytes=max_body_bytes, max_json_depth=max_json_depth,
                                        max_in_flight=max_in_flight, tokens=tokens),
                      batch=BatchConfig(max_batch=max_batch, max_wait_ms=max_wait_ms, cache_size=cache_size))
    app = create_app(encoder, client, cfg)
    if access_log:
        logging.getLogger("bridge.serve.access").setLevel(logging.INFO)
    say(f"serving {encoder.stamp.model} on http://{host}:{port}")
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False

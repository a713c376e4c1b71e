"""``splade-bridge serve``."""
from __future__ import annotations

import click

from .. import api
from .options import connection_options


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--model", envvar="BRIDGE_MODEL", default=None,
              help="Query model (default: the --index's stamped model, else rasyosef/splade-small).")
@click.option("--index", "default_index", default=None, help="Index used when a request names none.")
@click.option("--max-batch", default=32, show_default=True, help="Texts per model forward (1 = no batching).")
@click.option("--max-wait-ms", default=2.0, show_default=True, help="Longest wait to fill a batch.")
@click.option("--cache-size", default=10_000, show_default=True, help="LRU cache of expanded texts (0 = off).")
@click.option("--max-body-bytes", default=64 * 1024, show_default=True, help="Larger requests get 413.")
@connection_options()
@click.pass_obj
def serve_cmd(settings, host, port, model, default_index, max_batch, max_wait_ms, cache_size, max_body_bytes):
    """Serve /expand, /query, /search, /healthz and /metrics over HTTP (OpenAPI at /docs).

    A cluster is used only when --url (or BRIDGE_URL) is given; /search needs one.
    """
    try:
        import uvicorn

        from ..serve.app import ServeConfig, create_app
        from ..serve.batcher import BatchConfig
    except ImportError as exc:
        raise api.MissingExtra(exc.name, "serve") from None

    client, stamp = None, None
    if settings.url_given:
        client = settings.client()
        if default_index:
            stamp = api.open_index(client, default_index)
    encoder = api.load_encoder(model, stamp=stamp)
    cfg = ServeConfig(default_index=default_index, max_body_bytes=max_body_bytes,
                      batch=BatchConfig(max_batch=max_batch, max_wait_ms=max_wait_ms, cache_size=cache_size))
    app = create_app(encoder, client, cfg)
    click.echo(f"serving {encoder.stamp.model} on http://{host}:{port}", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=10)

"""``splade-bridge``: the command line. Results on stdout, progress and logs on stderr.

Exit codes: 0 success; 1 partial failure (some records failed, see the dead-letter file);
2 failure (bad usage, unreachable cluster, refused request, nothing indexed); 3 node not running.
"""
from __future__ import annotations

import json
import logging
import os
import sys

import click

from .cli_support import FORMAT, MODEL, Settings, create_index, emit, ingest_file, load_encoder
from .cluster.commands import cluster
from .config import RetryPolicy

log = logging.getLogger(__name__)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--url", envvar="BRIDGE_URL", default=None,
              help="Cluster URL(s), comma-separated [env BRIDGE_URL; default http://127.0.0.1:9200].")
@click.option("--username", envvar="BRIDGE_USERNAME", default=None, help="Basic-auth user [env BRIDGE_USERNAME].")
@click.option("--password-file", envvar="BRIDGE_PASSWORD_FILE", type=click.Path(dir_okay=False), default=None,
              help="File holding the password (or env BRIDGE_PASSWORD). Never printed.")
@click.option("--ca-certs", envvar="BRIDGE_CA_CERTS", default=None, help="CA bundle for TLS verification.")
@click.option("--client-cert", envvar="BRIDGE_CLIENT_CERT", default=None, help="TLS client certificate (PEM).")
@click.option("--client-key", envvar="BRIDGE_CLIENT_KEY", default=None, help="TLS client key (PEM).")
@click.option("--insecure", is_flag=True, help="Disable TLS certificate verification (warns).")
@click.option("--timeout", default=30.0, show_default=True, help="Request timeout in seconds.")
@click.option("--retry-for", default=60.0, show_default=True, metavar="SECONDS",
              help=f"Retry policy: {RetryPolicy().describe(limit='SECONDS')}. 0 = no retries.")
@click.option("--engine", envvar="BRIDGE_ENGINE", type=click.Choice(["opensearch", "elasticsearch"]), default=None,
              help="Skip detection from GET / (default: detected).")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("-v", "--verbose", is_flag=True, help="Info logs on stderr.")
@click.pass_context
def main_group(ctx, debug, verbose, **kw) -> None:
    """Run SPLADE learned-sparse retrieval natively on OpenSearch/Elasticsearch."""
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if not debug:  # the client logs every failed attempt with a traceback; our error line says it once
        logging.getLogger("opensearch").setLevel(logging.CRITICAL)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    ctx.obj = Settings(debug=debug, **kw)


main_group.add_command(cluster)


@main_group.group("model")
def model_group() -> None:
    """Model utilities."""


@model_group.command("fetch-tiny")
def fetch_tiny_cmd() -> None:
    """Download (once), verify and cache the offline SPLADE-tiny; prints its directory."""
    from .model_store import fetch_tiny

    click.echo(str(fetch_tiny()))


@main_group.group("index")
def index_group() -> None:
    """Create indices."""


def _long_docs(truncate: bool) -> dict:
    return {"long_documents": "truncate"} if truncate else {}


def _index_options(f):
    opts = [
        MODEL,
        click.option("--text-field", "text_fields", multiple=True, default=("title", "text"), show_default=True,
                     help="Text field(s) kept for BM25 and encoded (title + text are joined)."),
        click.option("--vector-field", default="splade", show_default=True, help="Vector field name."),
        click.option("--field-type", type=click.Choice(["rank_features", "sparse_vector"]), default="rank_features",
                     show_default=True, help="sparse_vector needs Elasticsearch >= 8.11."),
        click.option("--exclude-vector", is_flag=True, help="Keep the vector out of _source (smaller index; "
                                                            "explain then needs re-encoding)."),
        click.option("--shards", default=1, show_default=True, type=int),
        click.option("--replicas", default=None, type=int, help="Replica count (default: cluster default)."),
        click.option("--top-k", type=int, default=None, help="Document pruning: keep the k largest weights."),
        click.option("--max-ratio", type=float, default=None, help="Pruning: keep w >= ratio * max(w)."),
        click.option("--alpha-mass", type=float, default=None, help="Pruning: keep this fraction of mass."),
        click.option("--abs-value", type=float, default=None, help="Pruning: keep w >= value."),
        click.option("--quantize", type=click.Choice(["float", "int"]), default="float", show_default=True),
        click.option("--scale", type=float, default=100.0, show_default=True, help="Scale for --quantize int."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


TRUNCATE = click.option("--truncate", is_flag=True,
                        help="Cut documents at the model's limit (512 tokens) instead of encoding overlapping "
                             "windows max-pooled into one vector (the default). Recorded in the index stamp.")


@index_group.command("create")
@click.argument("name")
@_index_options
@TRUNCATE
@FORMAT
@click.pass_obj
def index_create(settings, name, model, truncate, fmt, **kw) -> None:
    """Create index NAME with a rank_features field, stamped with the model."""
    meta = create_index(settings.client(), name, load_encoder(model, **_long_docs(truncate)), **kw)
    emit(fmt, {"index": name, "meta": meta}, f"created {name} (model {meta['model']['model']})")


@main_group.command("ingest")
@click.argument("name")
@click.argument("source", type=str)
@MODEL
@click.option("--id-field", default="_id", show_default=True, help="Record field holding the document id.")
@click.option("--create/--no-create", default=True, show_default=True,
              help="Create the index (with --text-field defaults) when it does not exist.")
@click.option("--window", default=256, show_default=True, help="Documents encoded together.")
@click.option("--chunk-size", default=500, show_default=True, help="Documents per bulk request.")
@click.option("--max-retries", default=8, show_default=True,
              help="Resends of a document the cluster rejected with 429 (write queue full).")
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1, 16),
              help="Bulk requests in flight at once.")
@click.option("--dead-letter", type=click.Path(dir_okay=False), default=None,
              help="JSONL of rejected records (default: ./<index>-deadletter-<UTC time>.jsonl, "
                   "written only when something is rejected).")
@click.option("--text-field", "text_fields", multiple=True, default=("title", "text"), show_default=True)
@click.option("--skip-unchanged", is_flag=True,
              help="Don't re-encode documents already stored with the same text and model (content hash).")
@click.option("--bulk-load", is_flag=True,
              help="Initial load: refresh_interval -1 while ingesting, restored afterwards (new documents "
                   "become searchable at the end).")
@TRUNCATE
@FORMAT
@click.pass_obj
def ingest_cmd(settings, name, source, model, id_field, create, window, chunk_size, max_retries, concurrency,
               dead_letter, text_fields, skip_unchanged, bulk_load, truncate, fmt) -> None:
    """Encode SOURCE (a JSONL file, or - for stdin) and bulk-index it into NAME.

    Exit code 0: every record indexed (or unchanged); 1: some records rejected (named in the dead-letter
    file); 2: nothing indexed, or the cluster stayed unreachable past --retry-for."""
    cfg = dict(id_field=id_field, window=window, chunk_size=chunk_size, concurrency=concurrency,
               retry=settings.retry_policy(max_retries=max_retries), skip_unchanged=skip_unchanged,
               bulk_load=bulk_load)
    summary = ingest_file(settings.client(), name, source, model, create, text_fields, dead_letter, cfg,
                          _long_docs(truncate))
    if not summary.failed:
        summary.dead_letter = None
    emit(fmt, summary.as_dict(),
          f"read {summary.read}, encoded {summary.encoded}, unchanged {summary.skipped_unchanged}, "
          f"indexed {summary.indexed}, failed {summary.failed} "
          f"in {summary.seconds:.1f}s ({summary.docs_per_s:.1f} docs/s)"
          + (f"; rejected records in {summary.dead_letter}" if summary.failed else ""))
    if summary.failed:
        raise SystemExit(2 if summary.indexed == 0 else 1)


@main_group.command("search")
@click.argument("name")
@click.argument("text")
@MODEL
@click.option("--size", default=10, show_default=True)
@click.option("--form", type=click.Choice(["rank_feature", "neural_sparse", "sparse_vector"]), default=None,
              help="Query DSL: linear rank_feature clauses (default for rank_features fields), OpenSearch "
                   "neural_sparse (>= 2.14), Elasticsearch sparse_vector (>= 8.15, sparse_vector fields).")
@click.option("--filter", "filters", multiple=True, help="A filter clause as JSON (repeatable).")
@click.option("--explain", is_flag=True, help="Show each hit's top contributing tokens.")
@click.option("--allow-model-mismatch", is_flag=True, help="Query even if the index was built with another model.")
@click.option("--print-query", is_flag=True, help="Print the request body instead of searching.")
@click.option("--inference-free", is_flag=True,
              help="No model forward: query weights from the tokenizer and the index's IDF table "
                   "(`splade-bridge idf build NAME` first).")
@FORMAT
@click.pass_obj
def search_cmd(settings, name, text, model, size, form, filters, explain, allow_model_mismatch,
               print_query, inference_free, fmt) -> None:
    """Search NAME with the SPLADE expansion of TEXT; scores are SPLADE dot products."""
    from . import mapping
    from .search import Searcher, SearchOptions

    client = settings.client()
    _, meta = mapping.read_meta(client.indices.get_mapping(index=name))
    try:
        parsed = tuple(json.loads(f) for f in filters)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc.msg}", param_hint="--filter")
    searcher = Searcher(client, load_encoder(model, meta), name, allow_model_mismatch=allow_model_mismatch,
                        inference_free=inference_free)
    opts = SearchOptions(size=size, form=form, filters=parsed, explain=explain)
    if print_query:
        click.echo(json.dumps(searcher.build(text, opts)[0], indent=2, ensure_ascii=False))
        return
    hits = searcher.search(text, opts)
    lines = []
    for rank, h in enumerate(hits, 1):
        title = str(h.source.get("title") or h.source.get("text") or "")[:70]
        lines.append(f"{rank:>3}. {h.score:8.4f}  {h.id}  {title}")
        if h.explain:
            lines.append("       " + ", ".join(f"{t}={c:.3f}" for t, c in h.explain))
    emit(fmt, [h.as_dict() for h in hits], "\n".join(lines) or "no hits")


@main_group.group("idf")
def idf_group() -> None:
    """Inference-free query mode."""


@idf_group.command("build")
@click.argument("name")
@FORMAT
@click.pass_obj
def idf_build(settings, name, fmt) -> None:
    """Compute the IDF table of index NAME from its stored vectors and store it beside the index."""
    from . import idf, mapping

    client = settings.client()
    index, meta = mapping.read_meta(client.indices.get_mapping(index=name))
    out = idf.build(client, index, meta["vector_field"])
    emit(fmt, out, f"IDF of {out['tokens']} tokens over {out['documents']} documents stored in {out['index']}")


@main_group.command("expand")
@click.argument("text")
@MODEL
@click.option("--top-k", type=int, default=None, help="Keep only the k largest weights.")
@FORMAT
def expand_cmd(text, model, top_k, fmt) -> None:
    """Print the SPLADE query expansion of TEXT as {token: weight}."""
    from .config import PruneConfig
    from .sparse import prune

    encoder = load_encoder(model)
    tokens = encoder.tokens(prune(encoder.encode_query(text), PruneConfig(top_k=top_k)))
    tokens = dict(sorted(tokens.items(), key=lambda kv: -kv[1]))
    emit(fmt, tokens, "\n".join(f"{w:8.4f}  {t}" for t, w in tokens.items()) or "(no tokens)")


def _register_jobs() -> None:
    from .jobs import demo_cmd, eval_cmd
    from .ops import alias_group, reindex_cmd, status_cmd
    from .serve.command import serve_cmd

    for command in (eval_cmd, demo_cmd, serve_cmd, reindex_cmd, alias_group, status_cmd):
        main_group.add_command(command)


_register_jobs()


def main() -> None:
    from .errors import run_cli

    run_cli(main_group)

"""``index create``, ``ingest``, ``search``, ``expand``, ``idf build``."""
from __future__ import annotations

import json
import logging
import sys
import time
from datetime import datetime, timezone

import click

from .. import api
from .logs import say
from .options import (BACKEND, CHUNK_SIZE, DEAD_LETTER, FORMAT, HYBRID_METHOD, MAX_RETRIES, MODEL, PRECISION, STORAGE,
                      WRITE, connection_options, emit, encoding, long_documents, long_documents_options, model_option,
                      query_top_k_option, renamed_option, renamed_value, storage, window_option)


@click.group("index")
def index_group() -> None:
    """Create indices, enable SPLADE on existing ones, delete abandoned ones."""


def _index_options(f):
    opts = [
        model_option(api.DEFAULT_MODEL, what="Model whose vectors the index stores"),
        BACKEND,
        PRECISION,
        click.option("--text-field", "text_fields", multiple=True, default=("title", "text"), show_default=True,
                     help="Text field(s) kept for BM25 and encoded (title + text are joined)."),
        click.option("--vector-field", default="splade", show_default=True, help="Vector field name."),
        click.option("--field-type", type=click.Choice(["rank_features", "sparse_vector"]), default="rank_features",
                     show_default=True, help="sparse_vector needs Elasticsearch >= 8.11."),
        click.option("--exclude-vector", is_flag=True, help="Keep the vector out of _source (smaller index; "
                                                            "explain then needs re-encoding)."),
        click.option("--shards", default=1, show_default=True, type=int),
        click.option("--replicas", default=None, type=int, help="Replica count (default: cluster default)."),
        *STORAGE,
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


@index_group.command("create")
@click.argument("name")
@_index_options
@long_documents_options
@FORMAT
@connection_options()
@click.pass_obj
def index_create(settings, name, model, backend, precision, long_documents_mode, truncate, fmt, text_fields, vector_field, field_type, exclude_vector, shards,
                 replicas, top_k, max_ratio, alpha_mass, abs_value, quantize, scale) -> None:
    """Create index NAME with a rank_features field, stamped with the model."""
    cfg = api.IndexConfig(vector_field=vector_field, text_fields=tuple(text_fields),
                          exclude_vector_from_source=exclude_vector, shards=shards, replicas=replicas,
                          **storage(top_k, max_ratio, alpha_mass, abs_value, quantize, scale), field_type=field_type)
    mode = long_documents(long_documents_mode, truncate)
    encoder = api.load_encoder(model, **encoding(backend, precision), **({"long_documents": mode} if mode else {}))
    stamp = api.create_index(settings.client(), name, encoder, cfg)
    emit(fmt, {"index": name, "meta": stamp.to_meta()}, f"created {name} (model {stamp.model.model})")


def ingest_file(client, name: str, source: str, model: str | None, *, create: bool = True,
                text_fields=("title", "text"), dead_letter: str | None = None,
                config: api.IngestConfig | None = None, long_documents_mode: str | None = None,
                encoder_options: dict | None = None) -> api.IngestSummary:
    """``api.ingest`` of a JSONL file (or ``-``) with a progress bar and the default dead-letter path."""
    from tqdm import tqdm

    if dead_letter is None:
        dead_letter = f"{name}-deadletter-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.jsonl"
    total = api.count_records(source)
    config = config or api.IngestConfig(text_fields=tuple(text_fields))
    with tqdm(total=total, unit="doc", file=sys.stderr, desc=f"ingest {name}", dynamic_ncols=True) as bar:
        return api.ingest(client, name, api.read_records(source), model=model, create=create,
                          long_documents=long_documents_mode, config=config,
                          dead_letter=dead_letter, progress=bar.update, encoder_options=encoder_options)


@click.command("ingest")
@click.argument("name")
@click.argument("source", type=str)
@MODEL
@BACKEND
@PRECISION
@click.option("--id-field", default="_id", show_default=True, help="Record field holding the document id.")
@click.option("--create/--no-create", default=True, show_default=True,
              help="Create the index (with --text-field defaults) when it does not exist.")
@window_option(1024)
@CHUNK_SIZE
@MAX_RETRIES
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1, 16),
              help="Bulk requests in flight at once.")
@DEAD_LETTER
@click.option("--text-field", "text_fields", multiple=True, default=("title", "text"), show_default=True)
@click.option("--skip-unchanged", is_flag=True,
              help="Don't re-encode documents already stored with the same text and model (content hash).")
@click.option("--bulk-load", is_flag=True,
              help="Initial load: refresh_interval -1 while ingesting, restored afterwards (new documents "
                   "become searchable at the end).")
@WRITE
@long_documents_options
@FORMAT
@connection_options()
@click.pass_obj
def ingest_cmd(settings, name, source, model, backend, precision, id_field, create, window, chunk_size, max_retries, concurrency,
               dead_letter, text_fields, skip_unchanged, bulk_load, write, long_documents_mode, truncate, fmt) -> None:
    """Encode SOURCE (a JSONL file, or - for stdin) and bulk-index it into NAME.

    Exit code 0: every record indexed (or unchanged); 1: some records rejected (named in the dead-letter
    file); 2: nothing indexed, or the cluster stayed unreachable past --retry-for."""
    config = api.IngestConfig(id_field=id_field, text_fields=tuple(text_fields), window=window, chunk_size=chunk_size,
                              concurrency=concurrency, retry=settings.retry_policy(max_retries=max_retries),
                              skip_unchanged=skip_unchanged, bulk_load=bulk_load, write=write,
                              unique_ids=write == "index")
    summary = ingest_file(settings.client(), name, source, model, create=create and write == "index",
                          dead_letter=dead_letter,
                          config=config, long_documents_mode=long_documents(long_documents_mode, truncate),
                          encoder_options=encoding(backend, precision))
    if not summary.failed:
        summary.dead_letter = None
    emit(fmt, summary.as_dict(),
         f"read {summary.read}, encoded {summary.encoded}, unchanged {summary.skipped_unchanged}, "
         f"indexed {summary.indexed}, failed {summary.failed} "
         f"in {summary.seconds:.1f}s ({summary.docs_per_s:.1f} docs/s)"
         + (f"; rejected records in {summary.dead_letter}" if summary.failed else ""))
    if summary.failed:
        raise SystemExit(2 if summary.indexed == 0 else 1)


@click.command("search")
@click.argument("name")
@click.argument("text")
@MODEL
@BACKEND
@PRECISION
@click.option("--size", default=10, show_default=True)
@click.option("--form", type=click.Choice(["rank_feature", "neural_sparse", "sparse_vector"]), default=None,
              help="Query DSL: linear rank_feature clauses (default for rank_features fields), OpenSearch "
                   "neural_sparse (>= 2.14), Elasticsearch sparse_vector (>= 8.15, sparse_vector fields).")
@click.option("--filter", "filters", multiple=True, help="A filter clause as JSON (repeatable).")
@click.option("--mode", type=click.Choice(api.SEARCH_MODES), default="splade", show_default=True,
              help="bm25: the index's text fields alone (the baseline; --explain shows the SPLADE terms of its "
                   "hits). two-phase: tokens weighing >= RATIO x the largest find the hits, the rest are added in a "
                   "rescore of the top WINDOW (their scores stay exact; fewer postings are read). hybrid: BM25 "
                   "and SPLADE requests at once, fused client-side (scores are then fused scores).")
@click.option("--two-phase-ratio", type=click.FloatRange(0, 1, min_open=True), default=0.4, show_default=True)
@click.option("--two-phase-window", type=click.IntRange(1), default=100, show_default=True)
@HYBRID_METHOD
@click.option("--native", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Let OpenSearch's neural-search plugin run two-phase (its processor, with --form neural_sparse) "
                   "and hybrid (its hybrid query, fused by the cluster): auto where installed, always (or an "
                   "error saying why not), never (standard DSL, fused client-side). The output says which ran.")
@query_top_k_option(api.DEFAULT_QUERY_TOP_K)
@click.option("--explain", is_flag=True, help="Show each hit's top contributing tokens (in passage mode, and where the "
                                             "passage that scored starts).")
@click.option("--allow-model-mismatch", is_flag=True, help="Query even if the index was built with another model.")
@click.option("--print-query", is_flag=True, help="Print the request body instead of searching.")
@click.option("--inference-free", is_flag=True,
              help="No model forward: query weights from the tokenizer and the index's IDF table "
                   "(`splade-bridge idf build NAME` first).")
@FORMAT
@connection_options()
@click.pass_obj
def search_cmd(settings, name, text, model, backend, precision, size, form, filters, mode, two_phase_ratio, two_phase_window,
               hybrid_method, native, query_top_k, explain, allow_model_mismatch, print_query, inference_free, fmt) -> None:
    """Search NAME with the SPLADE expansion of TEXT; scores are SPLADE dot products."""
    try:
        parsed = tuple(json.loads(f) for f in filters)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc.msg}", param_hint="--filter")
    searcher = api.open_searcher(settings.client(), name, model=model, encoder_options=encoding(backend, precision),
                                 allow_model_mismatch=allow_model_mismatch,
                            inference_free=inference_free)
    opts = api.SearchOptions(size=size, form=form, filters=parsed, explain=explain, mode=mode,
                             two_phase=api.TwoPhase(ratio=two_phase_ratio, window=two_phase_window),
                             hybrid=api.Hybrid(method=hybrid_method), native=native,
                             query_prune=api.PruneConfig(top_k=query_top_k or None))
    if print_query:
        tokens = searcher.expand(text, opts.query_prune)
        body = searcher.build_tokens(tokens, opts)[0]
        if mode == "hybrid":
            body = searcher.native_hybrid_body(text, tokens, opts) or {
                "splade": body, "bm25": searcher.bm25_body(text, opts), "fusion": opts.hybrid.__dict__}
        click.echo(json.dumps(body, indent=None if fmt == "json" else 2, ensure_ascii=False))
        return
    tokens = searcher.expand(text, opts.query_prune)
    started = time.perf_counter()  # took_ms: the search, as /search's (the expansion before it is not counted)
    hits = searcher.search_tokens(tokens, opts, text=text)
    took_ms = round(1000 * (time.perf_counter() - started), 2)
    if hits.partial:
        say(f"warning: partial results: {hits.describe_partial()}", logging.WARNING)
    if hits.fusion:
        say(f"hybrid: {hits.fusion} fusion of BM25 and SPLADE")
    if hits.two_phase:
        say("two-phase: " + ("the cluster's neural_sparse_two_phase_processor" if hits.two_phase == "native"
                             else "first phase + rescore in standard DSL"))
    lines = []
    for rank, h in enumerate(hits, 1):
        title = str(h.source.get("title") or h.source.get("text") or "")[:70]
        lines.append(f"{rank:>3}. {h.score:8.4f}  {h.id}  {title}")
        if h.explain:
            where = f"passage at character {h.passage}: " if h.passage is not None else ""
            lines.append("       " + where + ", ".join(f"{t}={c:.3f}" for t, c in h.explain))
    emit(fmt, {**hits.as_dict(), "took_ms": took_ms}, "\n".join(lines) or "no hits")


@click.group("idf")
def idf_group() -> None:
    """Inference-free query mode."""


@idf_group.command("build")
@click.argument("name")
@FORMAT
@connection_options()
@click.pass_obj
def idf_build(settings, name, fmt) -> None:
    """Compute the IDF table of index NAME from its stored vectors and store it beside the index."""
    out = api.build_idf(settings.client(), name)
    emit(fmt, out, f"IDF of {out['tokens']} tokens over {out['documents']} documents stored in {out['index']}")


@click.command("expand")
@click.argument("text")
@model_option(api.DEFAULT_MODEL)
@BACKEND
@PRECISION
@query_top_k_option(None)
@renamed_option("--top-k", "--query-top-k", type=click.IntRange(0))
@FORMAT
def expand_cmd(text, model, backend, precision, query_top_k, top_k, fmt) -> None:
    """Print the SPLADE query expansion of TEXT: its tokens and weights (json: {"tokens": {token: weight}}, as the
    service's /expand)."""
    keep = renamed_value("--top-k", top_k, "--query-top-k", query_top_k)
    tokens = api.expand(api.load_encoder(model, **encoding(backend, precision)), text, keep or None)
    emit(fmt, {"tokens": tokens}, "\n".join(f"{w:8.4f}  {t}" for t, w in tokens.items()) or "(no tokens)")

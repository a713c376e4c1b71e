"""``index enable`` and ``backfill``: SPLADE on an index splade-bridge did not create."""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import click

from .. import api
from .options import (BACKEND, CHUNK_SIZE, DEAD_LETTER, DRY_RUN, FORMAT, MAX_RETRIES, MODEL, PRECISION, SLICE,
                      STORAGE, applied, connection_options, emit, encoding, long_documents, long_documents_options,
                      storage, window_option)


_storage_options = applied(STORAGE)


@click.command("enable")
@click.argument("name")
@click.option("--text-field", "text_fields", multiple=True, required=True,
              help="Text field(s) of the index to encode (repeatable; joined in this order).")
@click.option("--vector-field", default="splade", show_default=True, help="Vector field name.")
@click.option("--field-type", type=click.Choice(["rank_features", "sparse_vector"]), default="rank_features",
              show_default=True, help="sparse_vector needs Elasticsearch >= 8.11.")
@MODEL
@BACKEND
@PRECISION
@_storage_options
@long_documents_options
@DRY_RUN
@FORMAT
@connection_options()
@click.pass_obj
def enable_cmd(settings, name, text_fields, vector_field, field_type, model, backend, precision, top_k, max_ratio,
               alpha_mass, abs_value, quantize, scale, long_documents_mode, truncate, dry_run, fmt) -> None:
    """Add a SPLADE vector field to the existing index or alias NAME (one PUT _mapping: the vector field, a
    content-hash field and the stamp, merged into its _meta; nothing else changes). Then run `backfill`."""
    cfg = api.IndexConfig(vector_field=vector_field, text_fields=tuple(text_fields), field_type=field_type,
                          **storage(top_k, max_ratio, alpha_mass, abs_value, quantize, scale))
    plan = api.enable_index(settings.client(), name, model=model, config=cfg, dry_run=dry_run,
                            long_documents=long_documents(long_documents_mode, truncate),
                            encoder_options=encoding(backend, precision))
    if dry_run:
        click.echo(json.dumps(plan.as_dict(), indent=None if fmt == "json" else 2))
        return
    indices = ", ".join(sorted(plan.changes))
    emit(fmt, plan.as_dict(), f"enabled {indices} (model {plan.stamp.model.model}, field {vector_field}); "
                              f"now run: splade-bridge backfill {name}" if plan.changed else
         f"{indices} already enabled for model {plan.stamp.model.model}; nothing changed")


@click.command("backfill")
@click.argument("name")
@MODEL
@BACKEND
@PRECISION
@SLICE
@click.option("--query", default=None, metavar="JSON", help="Only the documents this query matches (query DSL).")
@window_option(1024)
@CHUNK_SIZE
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1, 16),
              help="Bulk requests in flight at once.")
@MAX_RETRIES
@click.option("--conflict-retries", default=5, show_default=True, type=click.IntRange(0),
              help="Times a document changed by another writer meanwhile is read and encoded again.")
@DEAD_LETTER
@DRY_RUN
@FORMAT
@connection_options()
@click.pass_obj
def backfill_cmd(settings, name, model, backend, precision, part, query, window, chunk_size, concurrency, max_retries,
                 conflict_retries, dead_letter, dry_run, fmt) -> None:
    """Give every document of enabled index NAME whose vector is missing or stale the vector of its stored text,
    by partial updates conditional on what was read: writers' changes made meanwhile are encoded again, deleted
    documents stay deleted. Rerun to resume.

    Exit code 0: every document current; 1: some could not be updated (named in the dead-letter file);
    2: none could, or the cluster stayed unreachable past --retry-for."""
    from tqdm import tqdm

    client, part = settings.client(), api.Slice.parse(part)
    try:
        query_dsl = json.loads(query) if query else None
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc.msg}", param_hint="--query") from None
    if dry_run:
        counts = api.check_backfill(client, name, part=part, query=query_dsl)
        emit(fmt, counts, ", ".join(f"{k} {v}" for k, v in counts.items()))
        return
    dead_letter = dead_letter or f"{name}-deadletter-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}.jsonl"
    config = api.IngestConfig(window=window, chunk_size=chunk_size, concurrency=concurrency,
                              retry=settings.retry_policy(max_retries=max_retries), conflict_retries=conflict_retries)
    total = client.count(index=name, body={"query": query_dsl} if query_dsl else None)["count"] // part.count
    with tqdm(total=total, unit="doc", file=sys.stderr, desc=f"backfill {name} {part}", dynamic_ncols=True) as bar:
        summary = api.backfill(client, name, model=model, part=part, query=query_dsl, config=config,
                               dead_letter=dead_letter, progress=bar.update,
                               encoder_options=encoding(backend, precision))
    if not summary.failed:
        summary.dead_letter = None
    out = summary.as_dict()
    emit(fmt, out, ", ".join(f"{k} {out[k]}" for k in ("read", "encoded", "unchanged", "updated", "conflicts_retried",
                                                       "deleted_meanwhile", "no_text", "failed"))
         + f" in {summary.seconds:.1f}s" + (f"; failed documents in {summary.dead_letter}" if summary.failed else ""))
    if summary.failed:
        raise SystemExit(2 if summary.updated == 0 and summary.unchanged == 0 else 1)

"""Operator commands: ``reindex``, ``index delete``, ``alias rollback``, ``status``."""
from __future__ import annotations

import json
import sys

import click

from .. import api
from .options import (BACKEND, DRY_RUN, FORMAT, PRECISION, SLICE, connection_options, emit, encoding, long_documents,
                      long_documents_options, model_option, window_option)


@click.command("reindex")
@click.option("--source", required=True, help="Index or alias to read (its text fields are re-encoded).")
@click.option("--alias", required=True, help="Alias to move to the new index once it is verified.")
@model_option("the source's stamped model", what="Model for the new index")
@BACKEND
@PRECISION
@long_documents_options
@click.option("--text-field", "text_fields", multiple=True,
              help="Text field(s) to encode (default: the source's stamped fields, else title + text).")
@window_option(128, "each window is also one bulk request and the unit a rerun resumes from")
@click.option("--sample-queries", default=5, show_default=True,
              help="Queries (source titles) whose top-10 must equal exact scoring before the swap.")
@click.option("--max-write-block", default=10.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Longest the source may be write-blocked for the last catch-up and the swap (seconds); "
                   "beyond it the block is lifted and nothing is swapped.")
@click.option("--lease", "lease_seconds", default=60.0, show_default=True, type=click.FloatRange(min=1),
              help="Seconds after which a reindex of the alias whose process died may be taken over.")
@SLICE
@click.option("--delete-old", is_flag=True, help="Delete the indices the alias pointed at (asks first).")
@click.option("--yes", is_flag=True, help="Don't ask before deleting.")
@DRY_RUN
@FORMAT
@connection_options()
@click.pass_obj
def reindex_cmd(settings, source, alias, model, backend, precision, long_documents_mode, truncate, text_fields, window,
                sample_queries,
                max_write_block, lease_seconds, part, delete_old, yes, dry_run, fmt):
    """Re-encode SOURCE into a new versioned index and swap ALIAS to it with zero downtime.

    Writes made to SOURCE during the copy (by any writer) are caught up from its sequence numbers; the last
    pass, the removal of documents deleted meanwhile and the swap run under a short write block on SOURCE
    (writers retry through it). One reindex per alias at a time. Reruns after a crash continue into the
    unfinished index without re-encoding finished batches.

    Shared by N processes (--slice I/N, one per machine): slice 0/N creates the new index, copies its part, waits
    until every slice is copied (copying itself a slice whose process died or never came within --lease), then
    catches up and swaps; slices 1/N ... N-1/N copy their part into it and exit.
    """
    from tqdm import tqdm

    client = settings.client()
    mode = long_documents(long_documents_mode, truncate)  # a new mode: every document is encoded again
    options = {**encoding(backend, precision), **({"long_documents": mode} if mode else {})}
    plan, encoder = api.plan_reindex(client, source, alias, model=model, text_fields=text_fields,
                                     delete_old=delete_old, encoder_options=options)
    if dry_run:
        actions = [{"remove": {"index": i, "alias": alias}} for i in plan.previous] + \
                  [{"add": {"index": plan.target, "alias": alias}}]
        out = {"plan": plan.as_dict(), "create": {"index": plan.target, "settings": {
            "refresh_interval": "-1", "number_of_replicas": 0}} if not plan.resume else None,
               "restore_settings": {"refresh_interval": None, "number_of_replicas": plan.replicas},
               "alias_actions": actions, "delete": list(plan.previous) if delete_old else []}
        click.echo(json.dumps(out, indent=None if fmt == "json" else 2))
        return

    def confirm(names):
        return yes or click.confirm(f"delete {', '.join(names)}?", err=True, default=False)

    part = api.Slice.parse(part)
    total = -(-sum(client.count(index=i)["count"] for i in plan.source_indices) // part.count)
    cfg = api.IngestConfig(window=window, chunk_size=window, queue_windows=1, concurrency=1, refresh=False,
                           retry=settings.retry_policy())
    with tqdm(total=total, unit="doc", file=sys.stderr, desc=f"reindex {part} of {alias}") as bar:
        summary = api.reindex(client, encoder, plan, cfg, sample_queries, progress=bar.update, confirm_delete=confirm,
                              catchup=api.CatchUpConfig(max_block_seconds=max_write_block, lease_seconds=lease_seconds),
                              part=part)
    ing, caught, target = summary.ingest, summary.catchup, summary.plan["target"]
    if part.index:
        emit(fmt, summary.__dict__, f"copied slice {part} into {target}: encoded {ing['encoded']}, unchanged "
             f"{ing['skipped_unchanged']}; slice 0/{part.count} swaps" if ing else f"slice {part} of {target} was "
             "copied already")
        return
    emit(fmt, summary.__dict__,
         f"{'resumed' if plan.resume else 'built'} {plan.target}: encoded {ing['encoded']}, unchanged "
         f"{ing['skipped_unchanged']}, {summary.target_count} documents, {summary.verified_queries} queries "
         f"verified; caught up {caught['caught_up']} documents in {caught['passes']} passes, "
         f"{caught['deletes_applied']} deletions, writes blocked {caught['write_block_seconds']:.3f} s; "
         f"alias {alias} -> {plan.target}" + (f"; deleted {summary.deleted}" if summary.deleted else ""))


@click.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Don't ask before deleting.")
@FORMAT
@connection_options()
@click.pass_obj
def delete_cmd(settings, name, yes, fmt):
    """Delete index NAME, e.g. an abandoned reindex target (`status` names them). Refused for an alias, an
    index an alias points at, and the target of a running reindex."""
    if not yes and not click.confirm(f"delete index {name}?", err=True, default=False):
        raise click.Abort()
    api.delete_index(settings.client(), name)
    emit(fmt, {"deleted": name}, f"deleted {name}")


@click.group("alias")
def alias_group():
    """Alias operations."""


@alias_group.command("rollback")
@click.argument("name")
@FORMAT
@connection_options()
@click.pass_obj
def rollback_cmd(settings, name, fmt):
    """Point alias NAME back at the index it named before the last reindex."""
    before, after = api.rollback_alias(settings.client(), name)
    emit(fmt, {"alias": name, "before": before, "after": after}, f"alias {name}: {before} -> {after}")


@click.command("status")
@FORMAT
@connection_options()
@click.pass_obj
def status_cmd(settings, fmt):
    """Engine, version, capabilities, splade-bridge indices with their model stamps, aliases, counts, running
    reindexes (and each slice of a shared one)."""
    out = api.cluster_status(settings.client())
    if fmt == "json":
        click.echo(json.dumps(out))
        return
    click.echo(f"{out['engine']} {out['version']}; clause budget {out['clause_budget']}; "
               f"query forms: {', '.join(out['capabilities']['query_forms'])}")
    for r in out["indices"]:
        click.echo(f"  {r['index']:<40} {r.get('documents', r['docs.count']):>9} docs  {r['store.size']:>8}  "
                   f"{r['model'] or '-'}@{(r['revision'] or '-')[:8]}"
                   + (f"  [{r['reindex_state']}]" if r["reindex_state"] else "")
                   + (f"  [abandoned: splade-bridge index delete {r['index']}]" if r.get("abandoned") else "")
                   + (f"  [enabled: {r['with_vector']:.1%} with a vector]" if r.get("enabled") else ""))
    for a in out["aliases"]:
        click.echo(f"  alias {a['alias']} -> {a['index']}")
    for r in out["reindexes"]:
        state = "done" if r.get("done") else "running" if r["live"] else "expired (its process died?)"
        click.echo(f"  reindex {r['id']} -> {r['target']}: {state}, {r['owner']} since {r['started']}"
                   + (f", {r['copied']} copied" if "copied" in r else ""))

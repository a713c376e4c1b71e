"""``splade-bridge``: the command line, a thin layer over ``bridge.api``. Results on stdout, progress and
logs on stderr.

Exit codes: 0 success; 1 partial failure (some records failed, see the dead-letter file);
2 failure (bad usage, unreachable cluster, refused request, nothing indexed); 3 node not running.
Every option can also be set from the environment: ``BRIDGE_<COMMAND>_<FLAG>``, e.g.
``BRIDGE_INGEST_CHUNK_SIZE`` (shown in each ``--help``); the connection options are ``BRIDGE_URL``,
``BRIDGE_USERNAME``, ... whichever command they are given to.
"""
from __future__ import annotations

import click

from ..api import __version__, fetch_tiny
from . import documents, existing, jobs, ops
from .cluster import cluster
from .kafka import kafka
from .worker import worker_cmd
from .exits import run
from .anywhere import OUTPUT, apply_output, install, model_options_on_group, output_options
from .options import CONNECTION_FLAGS, FORMAT, Settings, connection_options, emit, name_environment_variables
from .serve import serve_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@connection_options(on_group=True)
@model_options_on_group
@output_options(on_group=True)
@click.version_option(__version__, "--version", prog_name="splade-bridge", message="%(prog)s %(version)s")
@click.pass_context
def main_group(ctx: click.Context) -> None:
    """Run SPLADE learned-sparse retrieval natively on OpenSearch/Elasticsearch."""
    apply_output(ctx.ensure_object(Settings).output)


@main_group.group("model")
def model_group() -> None:
    """Model utilities."""


@model_group.command("fetch-tiny")
@FORMAT
def fetch_tiny_cmd(fmt) -> None:
    """Download (once), verify and cache the offline SPLADE-tiny; prints its directory."""
    path = str(fetch_tiny())
    emit(fmt, {"path": path}, path)


documents.index_group.add_command(existing.enable_cmd)
documents.index_group.add_command(ops.delete_cmd)
for command in (cluster, kafka, worker_cmd, documents.index_group, documents.ingest_cmd, existing.backfill_cmd, documents.search_cmd, documents.idf_group,
                documents.expand_cmd, jobs.eval_cmd, jobs.demo_cmd, serve_cmd, ops.reindex_cmd, ops.alias_group,
                ops.status_cmd):
    main_group.add_command(command)
install(main_group)
name_environment_variables(main_group)
main_group.help += ("\n\nThe connection options (" + ", ".join(CONNECTION_FLAGS) + "), the model options (--model, "
                    "--backend, --precision) and the output options (" + ", ".join(o[0][-1] for o in OUTPUT) +
                    ") are accepted before or after the subcommand; after it, they win.")


def main() -> None:
    run(main_group)

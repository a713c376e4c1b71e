"""``splade-bridge``: the command line, a thin layer over ``bridge.api``. Results on stdout, progress and
logs on stderr.

Exit codes: 0 success; 1 partial failure (some records failed, see the dead-letter file);
2 failure (bad usage, unreachable cluster, refused request, nothing indexed); 3 node not running.
Every option can also be set from the environment: ``BRIDGE_<COMMAND>_<FLAG>``, e.g.
``BRIDGE_INGEST_CHUNK_SIZE`` (shown in each ``--help``); the connection options are ``BRIDGE_URL``,
``BRIDGE_USERNAME``, ... whichever command they are given to.
"""
from __future__ import annotations

import logging
import os

import click

from ..api import __version__, fetch_tiny
from . import documents, existing, jobs, ops
from .cluster import cluster
from .kafka import kafka
from .worker import worker_cmd
from .exits import run
from .logs import configure
from .options import connection_options, name_environment_variables
from .serve import serve_cmd


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@connection_options(on_group=True)
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("-v", "--verbose", is_flag=True, help="Info logs on stderr.")
@click.option("-q", "--quiet", is_flag=True, envvar="BRIDGE_QUIET", help="Errors and results only: no progress bars, "
                                                                        "no info or warnings.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              envvar="BRIDGE_LOG_FORMAT", help="json: one JSON object per line on stderr (no progress bars).")
@click.version_option(__version__, "--version", prog_name="splade-bridge", message="%(prog)s %(version)s")
def main_group(debug, verbose, quiet, log_format) -> None:
    """Run SPLADE learned-sparse retrieval natively on OpenSearch/Elasticsearch.

    Connection options (--url, --username, --password-file, --ca-certs, --client-cert, --client-key,
    --insecure, --timeout, --retry-for, --engine) are accepted before or after the subcommand."""
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    configure(level, log_format, quiet=quiet and not debug)
    if not debug:  # the client logs every failed attempt with a traceback; our error line says it once
        logging.getLogger("opensearch").setLevel(logging.CRITICAL)
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


@main_group.group("model")
def model_group() -> None:
    """Model utilities."""


@model_group.command("fetch-tiny")
def fetch_tiny_cmd() -> None:
    """Download (once), verify and cache the offline SPLADE-tiny; prints its directory."""
    click.echo(str(fetch_tiny()))


documents.index_group.add_command(existing.enable_cmd)
documents.index_group.add_command(ops.delete_cmd)
for command in (cluster, kafka, worker_cmd, documents.index_group, documents.ingest_cmd, existing.backfill_cmd, documents.search_cmd, documents.idf_group,
                documents.expand_cmd, jobs.eval_cmd, jobs.demo_cmd, serve_cmd, ops.reindex_cmd, ops.alias_group,
                ops.status_cmd):
    main_group.add_command(command)
name_environment_variables(main_group)


def main() -> None:
    run(main_group)

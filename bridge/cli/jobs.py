"""Whole jobs on top of the single commands: ``eval`` (BEIR folders) and ``demo`` (the quick start)."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from .. import api
from .logs import say
from .documents import ingest_file
from .options import (BACKEND, FORMAT, HYBRID_METHOD, PRECISION, connection_options, encoding, long_documents,
                      long_documents_options, model_option, renamed_option, renamed_value)


@click.command("eval")
@click.option("--dataset", required=True, type=click.Path(file_okay=False, exists=True),
              help="BEIR-format folder: queries.jsonl and qrels/<split>.tsv (and corpus.jsonl for --ingest; "
                   "the judgments downloaded from serve --ui's compare page are such a folder).")
@click.option("--index", "index", required=True, help="Index holding the collection (built with --ingest).")
@click.option("--split", default="test", show_default=True)
@click.option("--ingest/--no-ingest", "do_ingest", default=False, show_default=True,
              help="Build the index from corpus.jsonl first (created if missing).")
@long_documents_options
@model_option("the index's stamped model", what="Model for --ingest and the queries")
@BACKEND
@PRECISION
@click.option("--modes", default="bm25,splade,hybrid,exact", show_default=True,
              help="Comma-separated: bm25, splade, two-phase, hybrid (as search --mode), exact (the exact "
                   "SPLADE dot product over every stored vector).")
@click.option("--metrics", default="nDCG@10,RR@10,R@100", show_default=True,
              help="ir_measures names, comma-separated (MRR@10 is accepted for RR@10).")
@HYBRID_METHOD
@renamed_option("--hybrid", "--hybrid-method", type=click.Choice(["rrf", "norm"]))
@click.option("--depth", default=100, show_default=True, help="Hits retrieved per query and mode.")
@click.option("--runs-dir", type=click.Path(file_okay=False), default=None,
              help="Write each mode's run in TREC format here.")
@FORMAT
@connection_options()
@click.pass_obj
def eval_cmd(settings, dataset, index, split, do_ingest, long_documents_mode, truncate, model, backend, precision, modes, metrics, hybrid_method, hybrid, depth, runs_dir, fmt):
    """Score BM25, SPLADE, hybrid and exact runs of a BEIR collection through the live cluster."""
    api.require_eval_extra()
    client = settings.client()
    if do_ingest:
        summary = ingest_file(client, index, str(Path(dataset) / "corpus.jsonl"), model,
                              long_documents_mode=long_documents(long_documents_mode, truncate),
                              encoder_options=encoding(backend, precision))
        say(f"ingested {summary.indexed} documents ({summary.failed} failed) in {summary.seconds:.0f}s")
    started = time.monotonic()
    out = api.evaluate(client, index, dataset, modes=[m.strip() for m in modes.split(",")],
                       metrics=metrics.split(","), split=split, model=model, depth=depth,
                       hybrid=renamed_value("--hybrid", hybrid, "--hybrid-method", hybrid_method),
                       runs_dir=runs_dir, progress=lambda m: say(f"running {m} ..."),
                       encoder_options=encoding(backend, precision))
    report = {"dataset": str(dataset), "split": split, "index": index, "queries": out["queries"],
              "model": out["model"], "results": out["results"], "seconds": round(time.monotonic() - started, 1)}
    if fmt == "json":
        click.echo(json.dumps(report))
        return
    names = out["metrics"]
    width = max(len(m) for m in names)
    click.echo(f"{out['queries']} judged queries, model {out['model']}")
    click.echo("mode    " + "  ".join(f"{m:>{width}}" for m in names))
    for mode, vals in out["results"].items():
        click.echo(f"{mode:<8}" + "  ".join(f"{vals[m]:>{width}.4f}" for m in names))


@click.command("demo")
@click.option("--index", default="scifact-demo", show_default=True)
@model_option("splade-tiny, the offline SPLADE-tiny: no hub needed", value="splade-tiny")
@BACKEND
@PRECISION
@click.option("--corpus", type=click.Path(dir_okay=False), default=None,
              help="JSONL corpus (default: ../shared/datasets/scifact/corpus.jsonl if present, else a "
                   "200-document SciFact sample shipped with the package).")
@click.option("--query", "queries", multiple=True,
              default=("vitamin D deficiency and bone fractures", "stem cells repair heart tissue"))
@click.option("--start-node/--no-start-node", default=True, show_default=True,
              help="Start a local OpenSearch node first (splade-bridge cluster up).")
@connection_options()
@click.pass_obj
def demo_cmd(settings, index, model, backend, precision, corpus, queries, start_node):
    """The whole job: node up -> create index -> ingest -> search -> top hits."""
    from importlib import resources

    if start_node:
        info = api.start_node(api.NodeSpec())
        say(f"node: {info.engine} {info.version} at {info.url}")
        settings.values["url"] = settings.values.get("url") or info.url
    if corpus is None:
        shared = Path.cwd().parent / "shared" / "datasets" / "scifact" / "corpus.jsonl"
        corpus = str(shared) if shared.exists() else str(resources.files("bridge.samples") / "scifact-200.jsonl")
    client = settings.client()
    client.indices.delete(index=index, ignore_unavailable=True)
    summary = ingest_file(client, index, corpus, model, encoder_options=encoding(backend, precision))
    say(f"indexed {summary.indexed} documents from {corpus} at {summary.docs_per_s:.1f} docs/s")
    searcher = api.open_searcher(client, index, model=model, encoder_options=encoding(backend, precision))
    for text in queries:
        click.echo(f"\nquery: {text}")
        for rank, hit in enumerate(searcher.search(text, api.SearchOptions(size=5, explain=True, explain_top=3)), 1):
            title = str(hit.source.get("title", ""))[:80]
            tokens = ", ".join(f"{t}={c:.2f}" for t, c in hit.explain or ())
            click.echo(f"{rank}. {hit.score:7.3f}  {hit.id:>10}  {title}  [{tokens}]")
    sys.stdout.flush()
    if start_node:
        say(f"\nthe {info.engine} node keeps running at {info.url} (pid {info.pid}, index {index!r}); stop it with: "
            f"splade-bridge cluster down --port {info.url.rsplit(':', 1)[1]}")

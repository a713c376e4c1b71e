"""The public Python API of splade-bridge: everything the CLI, the query service and ingest workers
use, for Python processes to import instead of shelling out. Re-exported from ``bridge``.

    import bridge
    client = bridge.connect("http://127.0.0.1:9200")
    encoder = bridge.load_encoder("splade-tiny")
    bridge.create_index(client, "docs", encoder)
    bridge.ingest(client, "docs", [{"_id": "1", "title": "Vitamin D", "text": "..."}])
    hits = bridge.search(client, "docs", "vitamin d and bones", bridge.SearchOptions(size=5))

Errors are ``bridge.BridgeError`` subclasses (``ClusterUnreachable``, ``ModelMismatch``, ...); a
client library's own exception escaping a call can be turned into one with ``as_bridge_error``.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from . import aliases, backfilling, enabling, indexing, reindexing
from .backfilling import BackfillSummary
from .enabling import EnablePlan
from .expansion import Expander, checked as checked_query
from .reindexing import CatchUpConfig
from .scan import Slice
from .status import cluster_status
from .cluster.kafka import (BrokerInfo, BrokerSpec, client_config as broker_client_config, down as stop_broker,
                            status as broker_status, up as start_broker)
from .cluster.local import NodeInfo, NodeSpec
from .cluster.plugins import PLUGINS as NODE_PLUGINS
from .cluster.local import down as stop_node, status as node_status, up as start_node
from .config import (BACKENDS, DEFAULT_DOC_TOP_K, DEFAULT_MODEL, DEFAULT_QUERY_TOP_K, ConnectionConfig, EncoderConfig,
                     LONG_DOCUMENTS, PRECISIONS, PruneConfig, QuantConfig, RetryPolicy)
from .connection.client import DEFAULT_CLAUSE_BUDGET, clause_budget, connect as _connect
from .connection.engines import ENGINES, capabilities, engine_of, parse_version
from .connection.failures import as_bridge_error, describe
from .errors import (AuthenticationFailed, BridgeError, ClusterError, ClusterRefused, ClusterUnreachable,
                     ConfigError, IndexExists, IndexNotBridged, IndexNotFound, IngestAborted, MissingExtra,
                     ModelLoadError, ModelMismatch, NodeError, QueryError, ReindexError, hinted)
from .indices import StampCache, create_index as _create_index, delete_index, read_stamp, stamp_of
from .mapping import IndexConfig
from .model_store import fetch_tiny
from .pipeline import Edges, IngestConfig, IngestSummary, Outcome
from .records import count_records, open_lines, read_jsonl
from .fusion import DEFAULT_METHOD as DEFAULT_FUSION
from .fusion import Hybrid
from .search_options import MODES as SEARCH_MODES, SearchOptions, TwoPhase, plan_query
from .searcher import Hit, Hits, Searcher
from .sparse import prune
from .stamp import IndexStamp, ModelStamp, ReindexState
from .types import BadRecord, Deletion, Document, SparseVector
from .version import __version__

__all__ = [
    "__version__", "connect", "load_encoder", "create_index", "open_index", "open_for_ingest", "ingest",
    "read_records", "count_records", "StampCache", "CatchUpConfig", "Expander", "checked_query", "enable_index", "backfill", "check_backfill", "Slice",
    "EnablePlan", "BackfillSummary", "expand", "open_searcher", "search", "evaluate", "require_eval_extra",
    "build_idf", "cluster_status", "plan_reindex", "reindex", "rollback_alias", "delete_index", "ConnectionConfig", "EncoderConfig",
    "RetryPolicy", "PruneConfig", "QuantConfig", "IndexConfig", "IngestConfig", "IngestSummary", "Outcome", "Edges",
    "SearchOptions", "SEARCH_MODES", "TwoPhase", "Hybrid", "Hit", "Hits", "Searcher", "IndexStamp", "ModelStamp", "ReindexState",
    "SparseVector", "Document", "Deletion", "BadRecord", "BACKENDS", "PRECISIONS", "LONG_DOCUMENTS", "DEFAULT_MODEL",
    "DEFAULT_DOC_TOP_K", "DEFAULT_QUERY_TOP_K", "DEFAULT_FUSION", "ENGINES", "BridgeError", "ConfigError",
    "MissingExtra", "ClusterError", "ClusterUnreachable", "ClusterRefused", "AuthenticationFailed", "IndexExists",
    "IndexNotFound", "IndexNotBridged", "ModelMismatch", "QueryError", "ModelLoadError", "IngestAborted",
    "ReindexError", "NodeError", "as_bridge_error", "describe", "plan_query", "prune", "clause_budget",
    "DEFAULT_CLAUSE_BUDGET", "capabilities", "engine_of", "parse_version", "NodeSpec", "NodeInfo", "NODE_PLUGINS",
    "start_node", "stop_node", "node_status", "fetch_tiny", "BrokerSpec", "BrokerInfo", "start_broker", "stop_broker",
    "broker_status", "broker_client_config", "read_jsonl", "SpladeEncoder"
]


def __getattr__(name: str):
    if name == "SpladeEncoder":  # the class, for type hints: torch loads only when it is asked for
        from .encoder import SpladeEncoder

        return SpladeEncoder
    raise AttributeError(f"module 'bridge.api' has no attribute {name!r}")


def connect(url: str | Sequence[str] | None = None, *, config: ConnectionConfig | None = None,
            engine: str | None = None, **options):
    """A client (opensearch-py or elasticsearch-py, whichever the cluster needs) for ``url`` (one URL, a
    comma-separated string or a list) or ``config``; ``options`` are ``ConnectionConfig`` fields
    (``username``, ``password``, ``ca_certs``, ``timeout``, ``retry``...). ``engine`` skips detection.
    Raises ``ClusterUnreachable`` / ``AuthenticationFailed`` once the retry policy gives up."""
    if config is None:
        urls = url.split(",") if isinstance(url, str) else (url or ("http://127.0.0.1:9200",))
        config = ConnectionConfig(urls=tuple(u.strip() for u in urls if u.strip()), **options)
    return _connect(config, engine)


def load_encoder(model: str | None = None, *, stamp: IndexStamp | ModelStamp | None = None, **options):
    """A ``SpladeEncoder`` for ``model`` (hub id, local directory or ``splade-tiny``); with ``stamp`` (an
    index's), its model, pooling and long-document mode are the defaults. ``options``: ``EncoderConfig``
    fields (``device``, ``backend``, ``precision``, ``threads``, ``long_documents``...)."""
    from .encoder import SpladeEncoder

    model_stamp = stamp.model if isinstance(stamp, IndexStamp) else stamp
    defaults = model_stamp.encoder_options() if model_stamp else {}
    ref = model or (model_stamp.model if model_stamp else None) or DEFAULT_MODEL
    return SpladeEncoder(EncoderConfig(model=ref, **{**defaults, **options}))


def create_index(client, name: str, encoder, config: IndexConfig = IndexConfig()) -> IndexStamp:
    """Create index ``name`` for ``encoder``'s vectors; returns the stamp written to its ``_meta``."""
    return _create_index(client, name, encoder.stamp, config)


def open_index(client, name: str) -> IndexStamp:
    """The stamp of index or alias ``name`` (``IndexNotFound``, ``IndexNotBridged`` otherwise)."""
    return read_stamp(client, name)[1]


def read_records(path: str | Path) -> Iterator[dict | BadRecord]:
    """Records of a JSONL file (``-`` for stdin); bad lines come through as ``BadRecord``s naming the line."""
    with open_lines(str(path)) as lines:
        yield from read_jsonl(lines)


def open_for_ingest(client, index: str, *, encoder=None, model: str | None = None, create: bool = True,
                    index_config: IndexConfig | None = None, long_documents: str | None = None,
                    text_fields: Sequence[str] = ("title", "text"), encoder_options: dict | None = None) -> tuple:
    """(encoder, stamp) to ingest into ``index``: a missing index is created (``create``) with ``index_config``
    (default: ``text_fields``) for the encoder; an existing one keeps its stamp, and an encoder (given, or
    loaded from ``model`` / the stamp) that does not match it raises ``ModelMismatch``. ``long_documents``
    (``window``/``truncate``) applies at creation and must match an existing index; ``encoder_options`` are
    ``EncoderConfig`` fields for a loaded encoder (``threads``, ``device``...)."""
    requested = {**(encoder_options or {}), **({"long_documents": long_documents} if long_documents else {})}
    if not client.indices.exists(index=index):
        if not create:
            raise hinted(IndexNotFound(f"index {index!r} does not exist"), "create")
        encoder = encoder or load_encoder(model, **requested)
        try:
            return encoder, create_index(client, index, encoder,
                                         index_config or IndexConfig(text_fields=tuple(text_fields)))
        except IndexExists:  # created meanwhile (workers starting together): open it like any existing index
            pass
    _, stamp, _ = read_stamp(client, index)
    stamped = stamp.model.encoder_options().get("long_documents", "window")
    if long_documents and stamped != long_documents:
        raise hinted(ConfigError(f"index {index!r} encodes long documents as {stamp.model.long_documents!r}; "
                                 "the long-document mode is chosen when the index is created"), "long_documents")
    encoder = encoder or load_encoder(model, stamp=stamp, **(encoder_options or {}))
    stamp.check_encoder(index, encoder.stamp)
    return encoder, stamp


def ingest(client, index: str, records: Iterable[dict | BadRecord], *, encoder=None, stamp: IndexStamp | None = None,
           model: str | None = None, create: bool = True, index_config: IndexConfig | None = None,
           long_documents: str | None = None, config: IngestConfig = IngestConfig(),
           dead_letter: str | Callable[[dict], None] | None = None, progress: Callable[[int], None] | None = None,
           acknowledge: Callable[[list[Outcome]], None] | None = None,
           observe: Callable[[str, float], None] | None = None, encoder_options: dict | None = None) -> IngestSummary:
    """Encode ``records`` (dicts with an id and text fields; ``{"<id>": ..., "_deleted": true}`` deletes) and
    bulk-index them into ``index``, opened (or created) as ``open_for_ingest`` does unless ``encoder`` and
    ``stamp`` come from an earlier call. Rejected records are counted, listed in ``summary.errors`` and given
    to ``dead_letter`` (a JSONL path or a callable); ``acknowledge(outcomes)`` is called per window once the
    cluster answered it; ``observe(stage, seconds)`` times each window's encoding and bulk request.
    ``IngestAborted`` when the cluster stays away past ``config.retry``."""
    if encoder is None or stamp is None:
        encoder, stamp = open_for_ingest(client, index, encoder=encoder, model=model, create=create,
                                         index_config=index_config, long_documents=long_documents,
                                         text_fields=config.text_fields, encoder_options=encoder_options)
    config = replace(config, text_fields=stamp.text_fields)
    return indexing.run(client, encoder, index, records, stamp, config, dead_letter=dead_letter, progress=progress,
                        acknowledge=acknowledge, observe=observe)


def enable_index(client, name: str, *, encoder=None, model: str | None = None, config: IndexConfig | None = None,
                 text_fields: Sequence[str] = ("title", "text"), long_documents: str | None = None,
                 dry_run: bool = False, encoder_options: dict | None = None) -> EnablePlan:
    """Bring SPLADE to an existing index or alias ``name`` that splade-bridge did not create: add the vector
    field (``config``: its name, type, pruning, quantization; default ``text_fields``), the content-hash field
    and the stamp, merged into the index's own ``_meta``, changing nothing else. ``ConfigError`` (nothing
    changed) when a text field is missing or not text, a field of that name has another type, the index is
    closed, or it holds another model's vectors. Already enabled for this model: nothing changes. Then
    ``backfill`` fills the vectors."""
    config = config or IndexConfig(text_fields=tuple(text_fields))
    requested = {**(encoder_options or {}), **({"long_documents": long_documents} if long_documents else {})}
    encoder = encoder or load_encoder(model, **requested)
    return enabling.enable(client, name, encoder.stamp, config, dry_run=dry_run)


def backfill(client, name: str, *, encoder=None, model: str | None = None, part: Slice = Slice(),
             query: dict | None = None, config: IngestConfig = IngestConfig(),
             dead_letter: str | Callable[[dict], None] | None = None, progress: Callable[[int], None] | None = None,
             encoder_options: dict | None = None) -> BackfillSummary:
    """Encode every document of enabled index ``name`` (slice ``part``; ``query``: only those it matches) whose
    vector is missing or stale, and write the vector by a partial update conditional on the ``_seq_no`` the text
    was read with: a change made meanwhile is read and encoded again, a deletion is never undone. Rerunning
    skips documents whose vector is current."""
    open_index(client, name)  # IndexNotFound / IndexNotBridged (not enabled) before a model is loaded
    encoder, stamp = open_for_ingest(client, name, encoder=encoder, model=model, create=False,
                                     encoder_options=encoder_options)
    return backfilling.run(client, name, encoder, stamp, part, query, config, dead_letter=dead_letter,
                         progress=progress)


def check_backfill(client, name: str, *, part: Slice = Slice(), query: dict | None = None) -> dict:
    """What ``backfill`` would do, read-only: documents with a current, stale or no vector."""
    return backfilling.check(client, name, open_index(client, name), part, query)


def expand(encoder, text: str, top_k: int | None = None) -> dict[str, float]:
    """The SPLADE query expansion of ``text``: ``{token: weight}``, largest first (``QueryError`` when the text is
    empty or expands to nothing)."""
    tokens = Expander(encoder).tokens(text, PruneConfig(top_k=top_k))
    return dict(sorted(tokens.items(), key=lambda kv: -kv[1]))


def open_searcher(client, index: str, *, encoder=None, model: str | None = None, allow_model_mismatch: bool = False,
                  inference_free: bool = False, encoder_options: dict | None = None) -> Searcher:
    """A ``Searcher`` for ``index``; the encoder defaults to the index's stamped model (``encoder_options``:
    ``EncoderConfig`` fields such as ``backend`` or ``threads``)."""
    if encoder is None:
        encoder = load_encoder(model, stamp=open_index(client, index), **(encoder_options or {}))
    return Searcher(client, encoder, index, allow_model_mismatch=allow_model_mismatch, inference_free=inference_free)


def search(client, index: str, text: str, options: SearchOptions = SearchOptions(), **searcher_options) -> Hits:
    """Hits of ``text`` in ``index``, scored by the SPLADE dot product (``searcher_options``: see ``open_searcher``);
    ``hits.partial`` says when shards failed or the search timed out."""
    return open_searcher(client, index, **searcher_options).search(text, options)


def evaluate(client, index: str, dataset: str | Path, *, modes: Sequence[str] = ("bm25", "splade", "hybrid", "exact"),
             metrics: Sequence[str] = ("nDCG@10", "RR@10", "R@100"), split: str = "test", encoder=None,
             model: str | None = None, depth: int = 100, hybrid: str = DEFAULT_FUSION, ingest_corpus: bool = False,
             runs_dir: str | Path | None = None, progress: Callable[[str], None] | None = None,
             encoder_options: dict | None = None) -> dict:
    """BEIR-style evaluation through the live cluster: ``{"results": {mode: {metric: value}}, "runs": ...}``.
    With ``ingest_corpus``, ``corpus.jsonl`` is ingested into ``index`` first; with ``runs_dir``, each mode's
    run is written there in TREC format. Needs the ``[eval]`` extra."""
    require_eval_extra()
    from . import evaluation

    collection = evaluation.load_beir(dataset, split)
    ingested = None
    if ingest_corpus:
        ingested = ingest(client, index, read_records(collection.corpus), encoder=encoder, model=model,
                          encoder_options=encoder_options)
    s = open_searcher(client, index, encoder=encoder, model=model, encoder_options=encoder_options)
    names = [m.strip().replace("MRR@", "RR@") for m in metrics if m.strip()]
    results, runs = evaluation.evaluate(client, s, collection, list(modes), names, depth=depth, hybrid=hybrid,
                                       progress=progress)
    if runs_dir:
        Path(runs_dir).mkdir(parents=True, exist_ok=True)
        for mode, run in runs.items():
            evaluation.write_trec(run, Path(runs_dir) / f"{mode}.trec", f"splade-bridge-{mode}")
    return {"results": results, "runs": runs, "queries": len(collection.queries), "model": s.stamp.model.model,
            "metrics": names, "ingested": ingested}


def require_eval_extra() -> None:
    """``MissingExtra`` unless the ``[eval]`` extra (ir_measures) is installed."""
    for module in ("ir_measures",):
        try:
            __import__(module)
        except ImportError:
            raise MissingExtra(module, "eval") from None


def build_idf(client, index: str) -> dict:
    """Compute the IDF table of ``index`` for inference-free queries and store it beside the index."""
    from . import idf

    concrete, stamp, _ = read_stamp(client, index)
    return idf.build(client, concrete, stamp.vector_field)


def plan_reindex(client, source: str, alias: str, *, encoder=None, model: str | None = None,
                 text_fields: Sequence[str] | None = None, delete_old: bool = False,
                 encoder_options: dict | None = None):
    """(plan, encoder) of a zero-downtime reindex of ``source`` behind ``alias``; the encoder defaults to the
    source's stamped model, and a new ``model`` keeps the source's long-document mode. The target gets the
    source's layout (shards, field type, pruning, quantization). Nothing changes until ``reindex(...)``."""
    if encoder is None:
        source_stamp = stamp_of(client, aliases.resolve(client, source)[0])
        kept = {k: v for k, v in (source_stamp.model.encoder_options() if source_stamp else {}).items()
                if k in ("long_documents", "window_overlap", "max_windows", "precision", "backend")}
        options = encoder_options or {}
        encoder = load_encoder(model, **{**kept, **options}) if model else load_encoder(stamp=source_stamp, **options)
    return reindexing.plan(client, source, alias, encoder, tuple(text_fields or ()) or None, delete_old), encoder


def reindex(client, encoder, plan, config: IngestConfig | None = None, sample_queries: int = 5,
            progress: Callable[[int], None] | None = None,
            confirm_delete: Callable[[list[str]], bool] = lambda names: True,
            catchup: CatchUpConfig = CatchUpConfig(), part: Slice = Slice()):
    """Run ``plan`` under the alias's lease: copy, catch up the writes made meanwhile (the last pass under a short
    write block on the source), verify, restore settings, swap the alias atomically (``ReindexError`` if not);
    ``part`` I/N: one of N processes sharing it (``bridge.slices``)."""
    config = config or IngestConfig(window=128, chunk_size=128, queue_windows=1, concurrency=1, refresh=False)
    return reindexing.run(client, encoder, plan, config, sample_queries, progress=progress,
                          confirm_delete=confirm_delete, catch=catchup, part=part)


def rollback_alias(client, alias: str) -> tuple[str, str]:
    """Point ``alias`` back at the index it named before the last reindex; returns (from, to)."""
    return aliases.rollback(client, alias)

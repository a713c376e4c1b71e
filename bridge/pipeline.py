"""The ingest pipeline with pluggable edges: records -> documents -> encoded windows -> bulk actions ->
a sink: encoding on the calling thread, a sending thread overlapping the I/O, memory bounded by a queue.

The edges are passed in (``Edges``) so one pipeline serves every composition: ``ingest`` (a JSONL file
or iterable into a cluster), ``reindex`` (an index read back and re-encoded) and stream workers (a
message source whose acknowledgement hook commits offsets). Tests replace any edge with a fake.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

from .actions import WRITES, Encoded, encoded_actions
from .config import RetryPolicy
from .errors import ConfigError
from .outcomes import Outcome, outcomes_of
from .records import to_documents
from .stamp import IndexStamp
from .types import BadRecord, Stored

log = logging.getLogger(__name__)

_DONE = object()


@dataclass(frozen=True)
class IngestConfig:
    id_field: str = "_id"
    text_fields: tuple[str, ...] = ("title", "text")
    window: int = 1024          # documents encoded together (sorted by length inside: less padding than 256)
    chunk_size: int = 500       # documents per bulk request
    max_chunk_bytes: int = 10 * 1024 * 1024
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: int = 2        # bulk requests in flight at once
    queue_windows: int = 4      # encoded windows waiting for the bulk side
    refresh: bool = True
    bulk_load: bool = False     # refresh_interval -1 while loading, then restored (initial loads)
    skip_unchanged: bool = False  # don't re-encode documents stored with the same content hash
    unique_ids: bool = True     # a repeated id is an error (files); False for streams of changes (updates)
    # "index": whole documents; "update": the vector of the stored text; "upsert": the record merged into the
    # stored document, with the vector of the merged text (enabled indices; see actions.py)
    write: str = "index"
    conflict_retries: int = 5   # a partial write whose document changed meanwhile is read and encoded again

    def __post_init__(self) -> None:
        if not self.text_fields:
            raise ConfigError("at least one text field is needed")
        if self.write not in WRITES:
            raise ConfigError(f"write must be one of {WRITES}, got {self.write!r}")
        if self.conflict_retries < 0:
            raise ConfigError("conflict_retries must be >= 0")
        for name in ("window", "chunk_size", "max_chunk_bytes", "queue_windows", "concurrency"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")


@dataclass
class IngestSummary:
    read: int = 0
    encoded: int = 0
    indexed: int = 0
    failed: int = 0
    skipped_unchanged: int = 0
    deleted: int = 0             # deletions applied (or of documents already absent)
    already_applied: int = 0     # records older than the stored version (external versions): a replay
    conflicts_retried: int = 0   # partial writes whose document changed meanwhile: read and encoded again
    deleted_meanwhile: int = 0   # partial writes of documents the cluster no longer holds (never recreated)
    no_text: int = 0             # stored documents with empty text fields: nothing to encode
    request_retries: int = 0     # bulk requests resent after a connection error, timeout or 5xx
    document_resends: int = 0    # documents resent after a per-document 429 or 503
    max_in_flight: int = 0       # most documents held between input and acknowledgement
    seconds: float = 0.0
    dead_letter: str | None = None
    errors: list[dict] = field(default_factory=list)

    @property
    def docs_per_s(self) -> float:
        return self.indexed / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        out = asdict(self)
        out["docs_per_s"] = round(self.docs_per_s, 2)
        out["errors"] = self.errors[:20]
        return out


@dataclass(frozen=True)
class Edges:
    """The replaceable I/O around the pipeline.

    ``sink(actions)`` sends bulk actions and returns one ``(ok, item)`` per action, in order (``BulkSender.send``);
    ``unchanged({id: content_hash})`` returns the ids already stored with that hash (None: encode all);
    ``current(ids)`` returns the stored state (text fields, hash, ``_seq_no``) of those the cluster holds, for
    partial writes (``IngestConfig.write``);
    ``dead_letter(entry)`` receives every rejected record; ``acknowledge(outcomes)`` is called once per window,
    after the sink answered every document in it, with the outcomes in input order (windows may be
    acknowledged out of order when ``concurrency`` > 1); ``progress(n)`` counts acknowledged records;
    ``observe(stage, seconds)`` times each window's ``encode`` and each ``bulk`` request."""

    sink: Callable[[list[dict]], list[tuple[bool, dict]]]
    unchanged: Callable[[dict[str, str]], set[str]] | None = None
    current: Callable[[list[str]], dict[str, Stored]] | None = None
    dead_letter: Callable[[dict], None] | None = None
    acknowledge: Callable[[list[Outcome]], None] | None = None
    progress: Callable[[int], None] | None = None
    observe: Callable[[str, float], None] | None = None


def run(records: Iterable[dict | BadRecord], encoder, index: str, stamp: IndexStamp, edges: Edges,
        cfg: IngestConfig = IngestConfig(), summary: IngestSummary | None = None) -> IngestSummary:
    """Encode ``records`` and hand them to ``edges.sink``; returns the counts (``summary`` filled in place).

    The calling thread reads and encodes, filling a queue of ``cfg.queue_windows`` windows; a sending thread
    keeps up to ``cfg.concurrency`` windows in the sink at once (a window holding an id that an earlier window
    in flight writes waits for it: records of one id reach the sink in input order) and calls ``acknowledge``,
    ``progress`` and ``dead_letter``, so at most ``(queue_windows + concurrency + 1) * window`` records are held. The encoder runs
    on the caller's thread because torch's OpenMP threads belong to the thread that starts them: run from a
    second thread, the encoder got a second team, libgomp (threads now over the cores) stopped spinning between
    parallel regions, and encoding alone ran 6-9% slower (1.72 instead of 1.93 busy cores; BENCHMARKS.md). A
    failure of the sink or the source stops the pipeline and is re-raised with ``summary`` counting what was
    acknowledged before (``summary.max_in_flight`` and ``summary.seconds`` are set either way); a failing
    source's earlier windows are still sent, an interrupt waits only for the requests already in the sink."""
    summary = summary if summary is not None else IngestSummary()
    windows: queue.Queue = queue.Queue(maxsize=cfg.queue_windows)
    failure: list[BaseException] = []  # the sending side's
    stop = threading.Event()
    held = _Held()

    def fold(batch: list, answers: list[tuple[bool, dict]]) -> None:
        outcomes = outcomes_of(batch, answers)
        for o in outcomes:
            summary.read += o.status != "conflict"  # read again, and counted, in the next pass
            summary.encoded += o.encoded
            summary.indexed += o.status == "indexed"
            summary.skipped_unchanged += o.status == "unchanged"
            summary.deleted += o.status == "deleted"
            summary.already_applied += o.status == "already_applied"
            summary.deleted_meanwhile += o.status == "missing"
            summary.no_text += o.status == "no_text"
            if o.status in ("invalid", "refused"):
                summary.failed += 1
                entry = o.dead_letter_entry
                log.warning("record %s rejected: %s", o.id or f"line {o.line}", o.reason)
                summary.errors.append(entry)
                if edges.dead_letter:
                    edges.dead_letter(entry)
        held.add(-len(batch))
        if edges.acknowledge:
            edges.acknowledge(outcomes)
        if edges.progress:  # a conflict is counted when it is finally written
            edges.progress(sum(o.status != "conflict" for o in outcomes))

    def send() -> None:
        pool = ThreadPoolExecutor(max_workers=cfg.concurrency, thread_name_prefix="splade-bulk")
        in_flight: dict = {}
        ids_in_flight: dict = {}

        def finish_one_of(futures) -> None:
            done, _ = wait(futures, return_when=FIRST_COMPLETED)
            for fut in done:
                ids_in_flight.pop(fut, None)
                fold(in_flight.pop(fut), fut.result())

        try:
            while not stop.is_set():
                try:
                    batch = windows.get(timeout=0.2)
                except queue.Empty:
                    continue
                if batch is _DONE:
                    break
                actions = [item.action for item in batch if isinstance(item, Encoded)]
                ids = {a["_id"] for a in actions}
                # per-id order: a window waits for the earlier windows in flight that write one of its ids
                while earlier := [f for f, held_ids in ids_in_flight.items() if held_ids & ids]:
                    finish_one_of(earlier)
                fut = pool.submit(_timed, edges, actions) if actions else _answered([])
                in_flight[fut], ids_in_flight[fut] = batch, ids
                while len(in_flight) >= cfg.concurrency:
                    finish_one_of(in_flight)
            for fut in list(in_flight):  # the remaining windows, in order
                fold(in_flight.pop(fut), fut.result())
        except BaseException as exc:  # re-raised in the calling thread
            failure.append(exc)
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            for fut, batch in list(in_flight.items()):  # count what the sink did acknowledge
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    fold(batch, fut.result())
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    started = time.monotonic()
    sender = threading.Thread(target=send, name="splade-send", daemon=True)
    sender.start()
    try:
        docs = to_documents(records, cfg.id_field, cfg.text_fields, cfg.unique_ids, text_required=cfg.write == "index")
        windows_out = encoded_actions(docs, encoder, index, stamp, cfg.window, edges.unchanged, cfg.write,
                                      edges.current)
        while not stop.is_set():
            began = time.perf_counter()
            batch = next(windows_out, None)
            if batch is None:
                break
            if edges.observe:
                edges.observe("encode", time.perf_counter() - began)
            held.add(len(batch))
            _put(windows, batch, stop)
    except BaseException as exc:
        if not isinstance(exc, Exception):  # an interrupt: stop after the requests already in the sink
            stop.set()
        raise
    finally:
        _put(windows, _DONE, stop, sender)
        sender.join()
        summary.max_in_flight = held.peak
        summary.seconds = time.monotonic() - started
        if failure:
            raise failure[0]
    return summary


def _put(windows: queue.Queue, item, stop: threading.Event, sender: threading.Thread | None = None) -> None:
    """Queue ``item`` unless the sending side stopped (or, with ``sender``, ended) first."""
    while not stop.is_set() and (sender is None or sender.is_alive()):
        try:
            windows.put(item, timeout=0.2)
            return
        except queue.Full:
            continue


class _Held:
    """Records read from the source and not yet acknowledged by the sink, and the most at once."""

    def __init__(self):
        self.now = self.peak = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.now += n
            self.peak = max(self.peak, self.now)


def _timed(edges: Edges, actions: list[dict]) -> list[tuple[bool, dict]]:
    began = time.perf_counter()
    try:
        return edges.sink(actions)
    finally:
        if edges.observe:
            edges.observe("bulk", time.perf_counter() - began)


def _answered(value) -> Future:
    fut: Future = Future()
    fut.set_result(value)
    return fut

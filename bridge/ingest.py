"""Ingest: records -> documents -> encoded windows -> bulk actions -> ``BulkSender``.

The pure stages are in ``bridge.actions``. ``run`` is the one edge: an encoder thread fills a
bounded queue while the calling thread hands windows to a few bulk senders, so encoding and bulk I/O
overlap and memory stays bounded. Retries (connection errors, timeouts, 5xx, 429) follow the
``RetryPolicy`` (see ``bridge.bulk``).
"""
from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable

from .actions import Unchanged, encoded_actions, stored_unchanged
from .config import RetryPolicy
from .records import DeadLetter, to_documents
from .types import BadRecord

log = logging.getLogger(__name__)

_DONE = object()


@dataclass(frozen=True)
class IngestConfig:
    id_field: str = "_id"
    text_fields: tuple[str, ...] = ("title", "text")
    window: int = 256           # documents encoded together (sorted by length inside)
    chunk_size: int = 500       # documents per bulk request
    max_chunk_bytes: int = 10 * 1024 * 1024
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    concurrency: int = 2        # bulk requests in flight at once
    queue_windows: int = 4      # encoded windows waiting for the bulk side
    refresh: bool = True
    bulk_load: bool = False     # refresh_interval -1 while loading, then restored (initial loads)
    skip_unchanged: bool = False  # don't re-encode documents stored with the same content hash

    def __post_init__(self) -> None:
        if not self.text_fields:
            raise ValueError("at least one text field is needed")
        for name in ("window", "chunk_size", "max_chunk_bytes", "queue_windows", "concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


@dataclass
class IngestSummary:
    read: int = 0
    encoded: int = 0
    indexed: int = 0
    failed: int = 0
    skipped_unchanged: int = 0
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


# -- the edge ------------------------------------------------------------------------------------

def run(client, encoder, index: str, records: Iterable[dict | BadRecord], meta: dict,
        cfg: IngestConfig = IngestConfig(), dead_letter: str | None = None,
        progress: Callable[[int], None] | None = None) -> IngestSummary:
    """Encode and index ``records`` into ``index`` (created beforehand with ``meta``).

    An encoder thread fills a bounded queue of windows; up to ``cfg.concurrency`` windows are in bulk
    requests at once (``BulkSender``: transient failures and 429s retried under ``cfg.retry``). At most
    ``(queue_windows + concurrency + 1) * window`` documents are held at any time. ``progress(n)`` is
    called as documents are acknowledged (or rejected)."""
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    from .bulk import BulkSender, SendStats

    summary = IngestSummary(dead_letter=dead_letter)
    stats = SendStats()
    sender = BulkSender(client, cfg.retry, stats, cfg.chunk_size, cfg.max_chunk_bytes)
    letters = DeadLetter(dead_letter)
    windows: queue.Queue = queue.Queue(maxsize=cfg.queue_windows)
    failure: list[BaseException] = []
    stop = threading.Event()
    held = _Held()

    def produce() -> None:
        try:
            docs = to_documents(records, cfg.id_field, cfg.text_fields)
            unchanged = stored_unchanged(client, index, cfg.retry) if cfg.skip_unchanged else None
            for batch in encoded_actions(docs, encoder, index, meta, cfg.window, unchanged):
                held.add(len(batch))
                while not stop.is_set():
                    try:
                        windows.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as exc:  # handed to the consumer, re-raised there
            failure.append(exc)
        finally:
            windows.put(_DONE)

    def fold(batch: list, answers: list[tuple[bool, dict]]) -> None:
        """Count one window's outcome (main thread only)."""
        answers_iter = iter(answers)
        for item in batch:
            summary.read += 1
            if isinstance(item, BadRecord):
                summary.failed += 1
                _record_error(summary, letters, {k: v for k, v in asdict(item).items() if v is not None})
            elif isinstance(item, Unchanged):
                summary.skipped_unchanged += 1
            else:
                summary.encoded += 1
                ok, answer = next(answers_iter)
                if ok:
                    summary.indexed += 1
                else:
                    summary.failed += 1
                    (_, info), = answer.items()
                    _record_error(summary, letters, {"id": info.get("_id"), "reason": _reason(info)})
        held.add(-len(batch))
        if progress:
            progress(len(batch))

    started = time.monotonic()
    restore = _pause_refresh(client, index) if cfg.bulk_load else None
    worker = threading.Thread(target=produce, name="splade-encode", daemon=True)
    pool = ThreadPoolExecutor(max_workers=cfg.concurrency, thread_name_prefix="splade-bulk")
    in_flight: dict = {}
    worker.start()
    try:
        while True:
            batch = windows.get()
            if batch is _DONE:
                break
            actions = [a for a in batch if isinstance(a, dict)]
            in_flight[pool.submit(sender.send, actions) if actions else _answered([])] = batch
            while len(in_flight) >= cfg.concurrency:
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for fut in done:
                    fold(in_flight.pop(fut), fut.result())
        for fut in list(in_flight):  # the remaining windows, in order
            fold(in_flight.pop(fut), fut.result())
    except Exception as exc:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        for fut, batch in list(in_flight.items()):  # count what the cluster did acknowledge
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                fold(batch, fut.result())
        raise IngestAborted(summary, exc) from exc
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        worker.join(timeout=5)
        letters.close()
        if restore is not None:
            _restore_refresh(client, index, restore)
        summary.request_retries, summary.document_resends = stats.request_retries, stats.document_resends
        summary.max_in_flight = held.peak
        summary.seconds = time.monotonic() - started
    if failure:
        raise IngestAborted(summary, failure[0]) from failure[0]
    if cfg.refresh:
        client.indices.refresh(index=index)
    summary.seconds = time.monotonic() - started
    return summary


class IngestAborted(RuntimeError):
    """The cluster stayed unreachable (or refused a whole request) past the retry policy. ``summary``
    holds what was acknowledged before; rerunning with ``--skip-unchanged`` continues from there."""

    def __init__(self, summary: IngestSummary, cause: BaseException):
        from .errors import describe

        self.summary, self.cause = summary, cause
        super().__init__(f"{describe(cause)}; ingest stopped after {summary.indexed} documents were indexed "
                         f"({summary.failed} rejected); rerun with --skip-unchanged to continue")


class _Held:
    """Documents read from the input and not yet acknowledged by the cluster, and the most at once."""

    def __init__(self):
        self.now = self.peak = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self.now += n
            self.peak = max(self.peak, self.now)


def _answered(value):
    from concurrent.futures import Future

    fut: Future = Future()
    fut.set_result(value)
    return fut


def _restore_refresh(client, index: str, restore) -> None:
    try:
        client.indices.put_settings(index=index, body={"index": {"refresh_interval": restore}})
    except Exception as exc:  # the cluster may be the reason we are here
        log.error("could not restore refresh_interval of %s to %s (%s): set it by hand", index, restore, exc)


def _pause_refresh(client, index: str):
    """Set ``refresh_interval: -1`` for the load; returns the value to restore (None = the default)."""
    current = client.indices.get_settings(index=index)
    restore = next(iter(current.values()))["settings"]["index"].get("refresh_interval")
    client.indices.put_settings(index=index, body={"index": {"refresh_interval": "-1"}})
    return restore


def _reason(info: dict) -> str:
    err = info.get("error")
    if isinstance(err, dict):
        return f"{err.get('type')}: {err.get('reason')}"
    return str(err or f"status {info.get('status')}")


def _record_error(summary: IngestSummary, letters: DeadLetter, entry: dict) -> None:
    log.warning("record %s rejected: %s", entry.get("id") or f"line {entry.get('line')}", entry.get("reason"))
    summary.errors.append(entry)
    letters.write(entry)

"""Sending one window of bulk actions under the retry policy, so a restart or a throttling cluster costs
time, never documents.

* A request that fails as a whole (connection refused, timeout, HTTP 502/503/504/429) is resent whole
  with backoff for up to ``retry_for`` seconds; ``index`` actions carry their ``_id``, so a resend of a
  request that had partly landed overwrites, it never duplicates.
* Documents the cluster rejects one by one with 429 (write queue full), 503 (shard not yet recovered
  after a restart) or a write block (403 ``cluster_block_exception``: a reindex's last catch-up holds one for a
  moment) are resent alone, up to ``max_retries`` times with the same backoff; every resend is counted.
* A request refused as a whole with 400/413 (an invalid ``_id`` fails the entire request) is split
  until the offending document is alone; only that one fails.
* Any other per-document error is final and returned to the caller (dead-letter).
"""
from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field

from .config import RetryPolicy
from .connection.engines import helpers
from .connection.failures import client_exceptions, describe, is_transient, status_of
from .connection.retry import call

log = logging.getLogger(__name__)

RESEND_STATUS = frozenset({429, 503})
SPLIT_STATUS = frozenset({400, 413})


@dataclass
class SendStats:
    """Retries so far (shared by the sender threads)."""

    request_retries: int = 0     # whole bulk requests resent after a transient failure
    document_resends: int = 0    # documents resent after a per-document 429 or 503
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)


def item_status(item: dict) -> int | None:
    (_, info), = item.items()
    status = info.get("status")
    return int(status) if isinstance(status, int) or (isinstance(status, str) and status.isdigit()) else None


def is_write_block(item: dict) -> bool:
    """A document refused because its index is write-blocked for a moment (it heals by waiting)."""
    (_, info), = item.items()
    return item_status(item) == 403 and "cluster_block_exception" in str(info.get("error", ""))


class BulkSender:
    """``send(actions)`` -> one ``(ok, item)`` per action, in order, after all retries."""

    def __init__(self, client, policy: RetryPolicy, stats: SendStats, chunk_size: int = 500,
                 max_chunk_bytes: int = 10 * 1024 * 1024, sleep=time.sleep):
        self.client, self.policy, self.stats = client, policy, stats
        self.chunk_size, self.max_chunk_bytes = chunk_size, max_chunk_bytes
        self._streaming_bulk = helpers(client).streaming_bulk
        self._sleep = sleep

    def send(self, actions: list[dict]) -> list[tuple[bool, dict]]:
        results: list[tuple[bool, dict] | None] = [None] * len(actions)
        pending = list(range(len(actions)))
        for resend in range(self.policy.max_retries + 1):
            answers = self._request([actions[i] for i in pending])
            throttled = []
            for i, (ok, item) in zip(pending, answers):
                if not ok and resend < self.policy.max_retries and (item_status(item) in RESEND_STATUS
                                                                      or is_write_block(item)):
                    throttled.append(i)
                else:
                    results[i] = (ok, item)
            if not throttled:
                break
            self.stats.add("document_resends", len(throttled))
            wait = min(self.policy.max_backoff, self.policy.initial_backoff * 2 ** resend)
            wait += random.uniform(0, self.policy.initial_backoff)
            log.info("%d documents rejected with 429/503 (queue full, shard recovering); resending in %.1fs",
                     len(throttled), wait)
            self._sleep(wait)
            pending = throttled
        return results  # type: ignore[return-value]

    def _request(self, actions: list[dict]) -> list[tuple[bool, dict]]:
        """All of ``actions`` through ``streaming_bulk`` (it splits by count and bytes), resent whole on a
        transient failure: answers are kept only once every chunk got one. A request refused as a whole
        (HTTP 400/413: one document can invalidate it) is split in halves until the culprit stands alone."""
        _, _, transport_errors = client_exceptions()

        def request() -> list[tuple[bool, dict]]:
            return list(self._streaming_bulk(
                self.client, actions, chunk_size=self.chunk_size, max_chunk_bytes=self.max_chunk_bytes,
                max_retries=0, raise_on_error=False, raise_on_exception=True))

        try:
            return call(request, self.policy, f"bulk request of {len(actions)} documents", is_transient,
                        on_retry=lambda: self.stats.add("request_retries"), sleep=self._sleep)
        except transport_errors as exc:
            status = status_of(exc)
            if status not in SPLIT_STATUS:
                raise
            if len(actions) == 1:
                return [(False, {"index": {"_id": actions[0].get("_id"), "status": status,
                                           "error": describe(exc)}})]
            half = len(actions) // 2
            log.info("bulk request of %d documents refused (HTTP %s); splitting it", len(actions), status)
            return self._request(actions[:half]) + self._request(actions[half:])

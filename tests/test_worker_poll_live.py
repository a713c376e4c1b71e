"""No poll-interval trap (live): a worker whose batches take longer than `max.poll.interval.ms` (an encoder slowed
on purpose, a 10 s interval) keeps its membership: no rebalance, every document indexed once, lag drained.
Without the polling while a batch runs, the member is expelled after each batch and the batch delivered again."""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from tests.conftest import load_jsonl

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.kafka]


class Slow:
    """The real encoder, each call delayed."""

    def __init__(self, encoder, seconds: float):
        self._encoder, self.seconds = encoder, seconds

    def __getattr__(self, name):
        return getattr(self._encoder, name)

    def encode_documents(self, texts):
        time.sleep(self.seconds)
        return self._encoder.encode_documents(texts)


def _worker(client, encoder, index, topic, group, stop, batch_size=12):
    from bridge import api
    from bridge.worker.consumer import WorkerConfig, WorkerSummary, make_consumer, make_producer, run
    from bridge.worker.metrics import WorkerMetrics
    from tests.streams import bootstrap

    cfg = WorkerConfig(bootstrap=bootstrap(), topic=topic, group=group, batch_size=batch_size, poll_seconds=0.5,
                       consumer_options=(("max.poll.interval.ms", "10000"), ("session.timeout.ms", "6000"),
                                         ("heartbeat.interval.ms", "1000")))
    ingest = api.IngestConfig(window=4, chunk_size=4, refresh=False, unique_ids=False)
    _, stamp = api.open_for_ingest(client, index, encoder=encoder, create=True)
    consumer, summary = make_consumer(cfg), WorkerSummary()
    thread = threading.Thread(target=lambda: run(client, index, encoder, stamp, cfg, ingest, consumer,
                                                 make_producer(cfg), WorkerMetrics(), stop, summary))
    thread.start()
    return thread, consumer, summary


def test_batches_longer_than_the_poll_interval_keep_the_member(client, encoder, broker, scifact_dir):
    from tests.streams import group_lag, new_topic, produce

    docs = load_jsonl(scifact_dir / "corpus.jsonl", 24)
    topic, group, index = new_topic(2), f"poll-{uuid.uuid4().hex[:6]}", f"poll-{uuid.uuid4().hex[:8]}"
    produce(topic, [(d["_id"], d) for d in docs])
    slow, stop = Slow(encoder, 4.0), threading.Event()  # 3 windows of 4 per batch: ~12 s against a 10 s interval
    started = time.monotonic()
    thread, consumer, summary = _worker(client, slow, index, topic, group, stop)
    try:
        deadline = time.monotonic() + 180
        while summary.consumed < len(docs) and time.monotonic() < deadline:
            time.sleep(0.5)
        took = time.monotonic() - started
    finally:
        stop.set()
        thread.join(60)
        consumer.close()
    try:
        assert summary.consumed == len(docs), summary
        assert summary.batches >= 2 and took / summary.batches > 10, (took, summary)  # each batch outlasted 10 s
        assert summary.rebalances == 1, summary  # the first assignment only: never expelled
        client.indices.refresh(index=index)
        assert summary.indexed == len(docs) and summary.already_applied == 0  # once each
        assert client.count(index=index)["count"] == len(docs)
        assert group_lag(topic, group) == 0
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)

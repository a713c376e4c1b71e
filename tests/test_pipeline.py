"""The ingest pipeline with fake edges (no cluster, no model): what reaches the sink, what is
acknowledged and dead-lettered, in which order, and how failures stop it; the retry helper with an
injected clock (nothing really sleeps)."""
import threading

import numpy as np
import pytest

from bridge import pipeline
from bridge.config import RetryPolicy
from bridge.connection.retry import call
from bridge.stamp import IndexStamp, ModelStamp
from bridge.types import BadRecord, SparseVector

STAMP = IndexStamp(ModelStamp("fake", "0" * 16))


class FakeEncoder:
    vocab = ["[PAD]", "alpha", "beta"]

    def __init__(self):
        self.texts = []

    def encode_documents(self, texts):
        self.texts.extend(texts)
        return [SparseVector(np.array([1, 2]), np.array([1.0, len(t) / 10], dtype=np.float32)) for t in texts]


class FakeSink:
    """Accepts every action except the ids in ``refuse``; records what it was sent."""

    def __init__(self, refuse=()):
        self.sent, self.refuse = [], set(refuse)
        self.lock = threading.Lock()

    def __call__(self, actions):
        with self.lock:
            self.sent.extend(a["_id"] for a in actions)
        return [(a["_id"] not in self.refuse,
                 {"index": {"_id": a["_id"], "status": 400 if a["_id"] in self.refuse else 201,
                            **({"error": {"type": "mapper_parsing_exception", "reason": "bad"}}
                               if a["_id"] in self.refuse else {})}}) for a in actions]


def records(n, start=0):
    return [{"_id": str(i), "text": f"document number {i}", "__line__": i + 1} for i in range(start, start + n)]


def test_every_record_reaches_the_sink_once_and_is_acknowledged_with_its_line():
    sink, acks, dead, progress = FakeSink(refuse={"7"}), [], [], []
    edges = pipeline.Edges(sink=sink, dead_letter=dead.append, acknowledge=acks.append, progress=progress.append)
    source = records(20) + [BadRecord("malformed JSON", line=21, raw="{")]
    summary = pipeline.run(source, FakeEncoder(), "idx", STAMP, edges, pipeline.IngestConfig(window=6, concurrency=3))
    assert sorted(sink.sent, key=int) == [str(i) for i in range(20)]
    outcomes = [o for window in acks for o in window]
    assert sorted(o.line for o in outcomes) == list(range(1, 22))
    by_id = {o.id: o for o in outcomes}
    assert by_id["7"].status == "refused" and "mapper_parsing_exception" in by_id["7"].reason
    assert by_id["3"].status == "indexed" and by_id["3"].line == 4
    assert [o.status for o in outcomes if o.line == 21] == ["invalid"]
    assert sorted(dead, key=str) == sorted([{"id": "7", "reason": "mapper_parsing_exception: bad"},
                                            {"reason": "malformed JSON", "line": 21, "raw": "{"}], key=str)
    assert (summary.read, summary.encoded, summary.indexed, summary.failed) == (21, 20, 19, 2)
    assert sum(progress) == 21
    assert summary.max_in_flight <= (4 + 3 + 1) * 6


def test_windows_keep_input_order_inside_each_acknowledgement():
    acks = []
    edges = pipeline.Edges(sink=FakeSink(), acknowledge=acks.append)
    pipeline.run(records(10), FakeEncoder(), "idx", STAMP, edges, pipeline.IngestConfig(window=4, concurrency=1))
    assert [[o.line for o in w] for w in acks] == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]


def test_unchanged_documents_skip_the_encoder_and_the_sink():
    encoder, sink = FakeEncoder(), FakeSink()
    edges = pipeline.Edges(sink=sink, unchanged=lambda digests: {i for i in digests if int(i) % 2 == 0})
    summary = pipeline.run(records(6), encoder, "idx", STAMP, edges, pipeline.IngestConfig(window=3))
    assert sorted(sink.sent) == ["1", "3", "5"] and len(encoder.texts) == 3
    assert (summary.skipped_unchanged, summary.encoded, summary.indexed) == (3, 3, 3)


def test_a_failing_sink_stops_the_pipeline_and_counts_what_was_acknowledged():
    calls = []

    def sink(actions):
        calls.append(len(actions))
        if len(calls) == 3:
            raise ConnectionError("cluster gone")
        return [(True, {"index": {"_id": a["_id"], "status": 201}}) for a in actions]

    summary = pipeline.IngestSummary()
    with pytest.raises(ConnectionError, match="cluster gone"):
        pipeline.run(records(50), FakeEncoder(), "idx", STAMP, pipeline.Edges(sink=sink),
                     pipeline.IngestConfig(window=5, concurrency=1), summary)
    assert summary.indexed == 10  # the two windows answered before the failure


def test_a_failing_source_is_raised_after_the_records_before_it():
    def source():
        yield from records(4)
        raise OSError("disk read error")

    sink = FakeSink()
    with pytest.raises(OSError, match="disk read error"):
        pipeline.run(source(), FakeEncoder(), "idx", STAMP, pipeline.Edges(sink=sink),
                     pipeline.IngestConfig(window=2, concurrency=1))
    assert sorted(sink.sent) == ["0", "1", "2", "3"]


class FakeClock:
    def __init__(self):
        self.now, self.sleeps = 0.0, []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_retry_waits_with_backoff_until_retry_for_then_raises_the_last_error():
    clock, attempts = FakeClock(), []

    def flaky():
        attempts.append(clock.now)
        raise TimeoutError("no answer")

    policy = RetryPolicy(retry_for=10.0, initial_backoff=0.5, max_backoff=4.0)
    with pytest.raises(TimeoutError):
        call(flaky, policy, "a request", is_transient=lambda e: True, sleep=clock.sleep, clock=clock)
    assert clock.now == pytest.approx(10.0)  # the last wait is cut so the final attempt lands at retry_for
    assert all(0 < s <= 4.0 + 0.5 for s in clock.sleeps) and len(attempts) == len(clock.sleeps) + 1
    assert clock.sleeps[1] > clock.sleeps[0]  # backoff grows


def test_retry_stops_at_once_on_a_failure_that_is_not_transient():
    clock = FakeClock()

    def refused():
        raise PermissionError("401")

    with pytest.raises(PermissionError):
        call(refused, RetryPolicy(retry_for=60), "a request", is_transient=lambda e: not isinstance(e, PermissionError),
             sleep=clock.sleep, clock=clock)
    assert clock.sleeps == []


def test_retry_returns_once_the_operation_succeeds():
    clock, results = FakeClock(), iter([ConnectionError("refused"), ConnectionError("refused"), "ok"])

    def operation():
        value = next(results)
        if isinstance(value, Exception):
            raise value
        return value

    assert call(operation, RetryPolicy(retry_for=60), "x", lambda e: True, sleep=clock.sleep, clock=clock) == "ok"
    assert len(clock.sleeps) == 2


class VersionedSink:
    """A fake cluster keeping external versions the way OpenSearch does: an index or delete whose version
    is not above the stored one is a 409; deleting what is absent is a 404."""

    def __init__(self):
        self.docs, self.versions = {}, {}

    def __call__(self, actions):
        out = []
        for a in actions:
            op, doc_id, version = a["_op_type"], a["_id"], a["version"]
            assert a["version_type"] == "external"
            if version <= self.versions.get(doc_id, 0):
                out.append((False, {op: {"_id": doc_id, "status": 409, "error": {
                    "type": "version_conflict_engine_exception", "reason": "current version is higher"}}}))
                continue
            self.versions[doc_id] = version
            if op == "delete":
                found = self.docs.pop(doc_id, None) is not None
                out.append((found, {op: {"_id": doc_id, "status": 200 if found else 404}}))
            else:
                self.docs[doc_id] = a["_source"]["title"]
                out.append((True, {op: {"_id": doc_id, "status": 201}}))
        return out


def test_stream_records_update_delete_and_replays_never_win():
    stream = [{"_id": "a", "title": "a1"}, {"_id": "a", "title": "a2"}, {"_id": "b", "title": "b1"},
              {"_id": "a", "_deleted": True}, {"_id": "c", "_deleted": True}]
    records = [{**r, "__line__": i + 1, "__version__": i + 1} for i, r in enumerate(stream)]
    sink, acks = VersionedSink(), []
    cfg = pipeline.IngestConfig(window=2, concurrency=1, unique_ids=False)  # repeated ids are updates
    first = pipeline.run(records, FakeEncoder(), "idx", STAMP, pipeline.Edges(sink=sink, acknowledge=acks.extend), cfg)
    assert sink.docs == {"b": "b1"}
    assert (first.indexed, first.deleted, first.already_applied, first.failed) == (3, 2, 0, 0)
    assert [o.status for o in acks] == ["indexed", "indexed", "indexed", "deleted", "deleted"]
    replay = pipeline.run(records, FakeEncoder(), "idx", STAMP, pipeline.Edges(sink=sink), cfg)
    assert sink.docs == {"b": "b1"} and (replay.indexed, replay.already_applied) == (0, 5)


def test_files_still_reject_repeated_ids():
    records = [{"_id": "a", "title": "one"}, {"_id": "a", "title": "two"}]
    summary = pipeline.run(records, FakeEncoder(), "idx", STAMP, pipeline.Edges(sink=FakeSink()))
    assert (summary.indexed, summary.failed) == (1, 1) and "duplicate id" in summary.errors[0]["reason"]


def test_partial_search_results_are_flagged():
    from bridge.searcher import Hits

    assert not Hits([], {"total": 3, "successful": 3, "skipped": 0, "failed": 0}).partial
    lost = Hits([], {"total": 3, "successful": 2, "skipped": 0, "failed": 1})
    assert lost.partial and lost.describe_partial() == "1 of 3 shards did not answer"
    assert Hits([], {"total": 3, "successful": 3, "failed": 0}, timed_out=True).partial

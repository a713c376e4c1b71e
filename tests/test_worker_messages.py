"""The worker's pure parts: messages as records, dead-letter entries, which offsets a batch commits, and
which messages a batch keeps when partitions were revoked while the cluster was away."""
from datetime import datetime, timezone

import pytest

pytest.importorskip("confluent_kafka")

from bridge.api import BadRecord, Outcome  # noqa: E402
from bridge.worker.batches import next_offsets, still_assigned  # noqa: E402
from bridge.worker.messages import Position, dead_letter_headers, to_record  # noqa: E402


def test_messages_become_versioned_records():
    assert to_record(b'{"_id": "a", "title": "t"}', b"a", offset=41, seq=3, id_field="_id") == {
        "_id": "a", "title": "t", "__line__": 3, "__version__": 42}
    assert to_record(None, b"a", offset=7, seq=1, id_field="doc") == {
        "doc": "a", "_deleted": True, "__line__": 1, "__version__": 8}  # a tombstone deletes by key
    bad = to_record(b"{nope", b"k", offset=0, seq=2, id_field="_id")
    assert isinstance(bad, BadRecord) and bad.line == 2 and bad.reason.startswith("malformed JSON")
    assert to_record(None, None, offset=0, seq=5, id_field="_id").reason.startswith("a tombstone")
    assert to_record(b"", b"k", offset=0, seq=6, id_field="_id").reason == "empty message"


def test_dead_letters_keep_the_message_and_say_where_and_why():
    when = datetime(2026, 12, 3, 10, 0, 0, tzinfo=timezone.utc)
    first = Position("docs", 1, 99, b"k", b"{nope", (("trace", b"t-1"),))
    headers = dead_letter_headers(Outcome("invalid", None, 2, "malformed JSON", raw="{nope"), first, when)
    assert headers == [("trace", b"t-1"), ("__splade.errors.topic", b"docs"), ("__splade.errors.partition", b"1"),
                       ("__splade.errors.offset", b"99"), ("__splade.errors.stage", b"parse"),
                       ("__splade.errors.reason", b"malformed JSON"), ("__splade.errors.id", b""),
                       ("__splade.errors.time", b"2026-12-03T10:00:00Z")]
    # replayed from the dead-letter topic: versioned by its first offset; refused again, it keeps that origin
    assert to_record(b'{"_id": "a"}', b"a", offset=3, seq=1, id_field="_id", headers=headers)["__version__"] == 100
    again = dead_letter_headers(Outcome("refused", "a", 1, "mapper_parsing_exception"),
                                Position("docs.deadletter", 0, 3, b"a", b"{}", tuple(headers)), when)
    assert again[0] == ("trace", b"t-1") and len(again) == len(headers)
    assert dict(again)["__splade.errors.offset"] == b"99" and dict(again)["__splade.errors.stage"] == b"index"
    assert dict(again)["__splade.errors.id"] == b"a"


def test_a_batch_commits_past_its_last_offset_per_partition():
    positions = [Position("t", 0, 5, None), Position("t", 1, 9, None), Position("t", 0, 7, None)]
    assert [(tp.partition, tp.offset) for tp in next_offsets(positions)] == [(0, 8), (1, 10)]


class Assigned:
    def __init__(self, *partitions):
        from confluent_kafka import TopicPartition

        self.partitions = [TopicPartition("t", p) for p in partitions]

    def assignment(self):
        return self.partitions


def test_revoked_partitions_leave_the_batch_and_positions_keep_their_numbers():
    positions = {1: Position("t", 0, 10, b"a"), 2: Position("t", 1, 20, b"b"), 3: Position("t", 0, 11, b"c")}
    records = [{"__line__": 1}, {"__line__": 2}, {"__line__": 3}]
    kept, where = still_assigned(Assigned(0), records, positions)
    assert kept == [{"__line__": 1}, {"__line__": 3}]
    assert where == {1: positions[1], 3: positions[3]}  # an outcome's line still finds its own message
    assert still_assigned(Assigned(2), records, positions) is None


def test_a_worker_is_ready_only_running_with_partitions_and_the_cluster_reachable():
    from bridge.worker.metrics import WorkerMetrics

    metrics = WorkerMetrics()
    assert metrics.ready() == (False, "worker starting")
    metrics.set_state(status="running")
    assert metrics.ready()[0] is False and "no partitions" in metrics.ready()[1]
    metrics.set_state(assigned=["docs[0]"])
    assert metrics.ready() == (True, "")
    metrics.set_state(paused=True)
    assert metrics.ready() == (False, "the cluster is unreachable: consumption paused")

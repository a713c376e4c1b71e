"""A poll's messages as a batch: the records for the ingest pipeline and each message's position (its
``seq`` is the record's ``line``, so an outcome finds its message), what stays of a batch after its partitions
were revoked, and the offsets a batch commits."""
from __future__ import annotations

import logging

from ..api import BadRecord
from .messages import Position, to_record

log = logging.getLogger(__name__)


def still_assigned(consumer, records: list, positions: dict):
    """The batch without the messages of partitions revoked meanwhile (their new owner reads them)."""
    assigned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
    kept = {seq: p for seq, p in positions.items() if (p.topic, p.partition) in assigned}
    return ([r for r in records if line_of(r) in kept], kept) if kept else None


def line_of(record) -> int:
    return record.line if isinstance(record, BadRecord) else record["__line__"]


def make_batch(consumer, messages, id_field: str, id_from_key: bool = False, on_null: str = "delete",
               skip=lambda topic: False):
    """(records, {seq: Position}) of the messages of partitions still assigned; None when empty. A message
    skipped (a null value ignored, or of a topic ``skip`` names: dead letters a pattern matched) has a
    position but no record."""
    from confluent_kafka import KafkaError

    assigned = {(tp.topic, tp.partition) for tp in consumer.assignment()}
    records, positions = [], {}
    for m in messages:
        if m.error():
            if m.error().code() != KafkaError._PARTITION_EOF:
                log.warning("consumer error: %s", m.error())
            continue
        if (m.topic(), m.partition()) not in assigned:
            continue  # revoked during this poll: its new owner reads it from the committed offset
        seq, headers = len(positions) + 1, tuple(m.headers() or ())
        positions[seq] = Position(m.topic(), m.partition(), m.offset(), m.key(), m.value(), headers)
        if skip(m.topic()):
            continue
        record = to_record(m.value(), m.key(), m.offset(), seq, id_field, id_from_key, headers, on_null)
        if record is not None:
            records.append(record)
    return (records, positions) if positions else None


def next_offsets(positions) -> list:
    from confluent_kafka import TopicPartition

    last: dict[tuple[str, int], int] = {}
    for p in positions:
        last[(p.topic, p.partition)] = max(last.get((p.topic, p.partition), -1), p.offset)
    return [TopicPartition(t, part, offset + 1) for (t, part), offset in sorted(last.items())]

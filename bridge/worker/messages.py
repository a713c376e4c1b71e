"""Kafka messages as ingest records, pure: one JSON document per message value; a key with a null value
(a tombstone) or ``{"<id field>": ..., "_deleted": true}`` deletes. Each record carries its position in the
batch (``__line__``) and, as its external version, the partition offset + 1, so a replayed older message
never overwrites a newer one."""
from __future__ import annotations

import json
from dataclasses import dataclass

from ..api import BadRecord, Outcome, read_jsonl


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    offset: int
    key: bytes | None


def to_record(value: bytes | None, key: bytes | None, offset: int, seq: int, id_field: str,
              id_from_key: bool = False) -> dict | BadRecord:
    """The record of one message; ``seq`` is its place in the batch (the pipeline's ``line``). With
    ``id_from_key`` the document id is the message key, whatever the value says."""
    version = offset + 1
    if value is None:
        if key is None:
            return BadRecord("a tombstone (null value) without a key: nothing to delete", line=seq)
        try:
            doc_id = key.decode("utf-8")
        except UnicodeDecodeError as exc:
            return BadRecord(f"tombstone key is not UTF-8 (byte {exc.start})", line=seq)
        return {id_field: doc_id, "_deleted": True, "__line__": seq, "__version__": version}
    parsed = next(read_jsonl([value]), None)
    if parsed is None:
        return BadRecord("empty message", line=seq)
    if isinstance(parsed, BadRecord):
        return BadRecord(parsed.reason, line=seq, raw=parsed.raw)
    if id_from_key:
        if key is None:
            return BadRecord("the message has no key to take the id from", line=seq,
                             raw=value[:1000].decode("utf-8", "replace"))
        try:
            parsed = {**parsed, id_field: key.decode("utf-8")}
        except UnicodeDecodeError as exc:
            return BadRecord(f"message key is not UTF-8 (byte {exc.start})", line=seq)
    return {**parsed, "__line__": seq, "__version__": version}


def dead_letter_entry(outcome: Outcome, where: Position) -> dict:
    """What goes to the dead-letter topic for a rejected message: where it was, and why."""
    return {"topic": where.topic, "partition": where.partition, "offset": where.offset,
            "key": where.key.decode("utf-8", "replace") if where.key is not None else None,
            "id": outcome.id, "reason": outcome.reason, **({"raw": outcome.raw} if outcome.raw else {})}


def encode_entry(entry: dict) -> bytes:
    return json.dumps(entry, ensure_ascii=False).encode("utf-8")

"""Kafka messages as ingest records, pure: one JSON document per message value; a key with a null value
(a tombstone) or ``{"<id field>": ..., "_deleted": true}`` deletes. Each record carries its position in the
batch (``__line__``) and, as its external version, the partition offset + 1, so a replayed older message
never overwrites a newer one. A dead letter is the refused message itself — its key, its whole value, its
headers — plus headers saying where it was and why (``__splade.errors.*``, as Kafka Connect's
``__connect.errors.*``); replayed from the dead-letter topic it keeps the version of where it was first."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from ..api import BadRecord, Outcome, read_jsonl


ERRORS = "__splade.errors."  # the context headers of a dead letter
ORIGIN = ("topic", "partition", "offset")


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()


def first_offset(headers) -> int | None:
    """The offset a replayed dead letter had where it was first consumed (None: not a dead letter)."""
    for name, value in headers or ():
        if name == ERRORS + "offset" and value is not None:
            try:
                return int(value)
            except ValueError:
                return None
    return None


ON_NULL = ("delete", "ignore", "fail")  # Kafka Connect's behavior.on.null.values


def to_record(value: bytes | None, key: bytes | None, offset: int, seq: int, id_field: str,
              id_from_key: bool = False, headers=(), on_null: str = "delete") -> dict | BadRecord | None:
    """The record of one message; ``seq`` is its place in the batch (the pipeline's ``line``). With
    ``id_from_key`` the document id is the message key, whatever the value says. A replayed dead letter
    (``headers``) is versioned by the offset it was first consumed at. A null value (a tombstone) deletes the
    key's document (``on_null``: or is skipped — None —, or is a bad record)."""
    first = first_offset(headers)
    version = (offset if first is None else first) + 1
    if value is None and on_null != "delete":
        return None if on_null == "ignore" else BadRecord("a null value (tombstone), refused by --on-null fail",
                                                          line=seq)
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


def dead_letter_headers(outcome: Outcome, where: Position, when: datetime) -> list[tuple[str, bytes]]:
    """The message's own headers, then where it was first consumed and why it was refused now: ``topic``,
    ``partition``, ``offset`` (kept from an earlier dead letter's, so a replay keeps its version), ``stage``
    (``parse``: bad input; ``index``: refused by the cluster), ``reason``, ``id``, ``time``."""
    own = [(k, v) for k, v in where.headers if not k.startswith(ERRORS)]
    earlier = {k[len(ERRORS):]: v for k, v in where.headers if k.startswith(ERRORS) and k[len(ERRORS):] in ORIGIN}
    origin = earlier if len(earlier) == len(ORIGIN) else {
        "topic": where.topic.encode(), "partition": str(where.partition).encode(), "offset": str(where.offset).encode()}
    context = {**origin, "stage": b"parse" if outcome.status == "invalid" else b"index",
               "reason": (outcome.reason or "")[:1000].encode("utf-8"), "id": (outcome.id or "")[:512].encode("utf-8"),
               "time": when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ").encode()}
    return own + [(ERRORS + k, v) for k, v in context.items()]

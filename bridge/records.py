"""Input records at the edge: JSON lines (text or bytes) -> validated ``Document``s or ``BadRecord``s
naming the line and the reason, and the dead-letter file the rejected ones go to."""
from __future__ import annotations

import gzip
import json
import sys
import zlib
from typing import IO, Iterable, Iterator

from .types import BadRecord, Deletion, Document

DELETED = "_deleted"      # a record {"<id field>": ..., "_deleted": true} deletes that document
LINE, VERSION = "__line__", "__version__"   # where a record came from, and its external version (set by sources)


def read_jsonl(lines: Iterable[str | bytes]) -> Iterator[dict | BadRecord]:
    """Parse JSON lines (text or raw bytes); a bad line becomes a ``BadRecord`` naming its line number.
    A UTF-8 byte-order mark is ignored; ``NaN``/``Infinity`` (not JSON) are rejected."""
    for n, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield BadRecord(f"invalid UTF-8 at byte {exc.start}", line=n,
                                raw=line[:1000].decode("utf-8", "replace"))
                continue
        line = line.lstrip("\ufeff")
        if not line.strip():
            continue
        try:
            obj = json.loads(line, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            yield BadRecord(f"malformed JSON: {exc.msg} (column {exc.colno})", line=n, raw=line[:1000])
            continue
        except ValueError as exc:
            yield BadRecord(str(exc), line=n, raw=line[:1000])
            continue
        except RecursionError:
            yield BadRecord("JSON nested too deeply", line=n, raw=line[:1000])
            continue
        if not isinstance(obj, dict):
            yield BadRecord(f"a JSON object was expected, got {type(obj).__name__}", line=n, raw=line[:1000])
            continue
        yield {**obj, "__line__": n}


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON (no NaN/Infinity in documents)")


def to_documents(records: Iterable[dict | BadRecord | Document | Deletion], id_field: str = "_id",
                 text_fields: tuple[str, ...] = ("title", "text"), unique_ids: bool = True,
                 text_required: bool = True) -> Iterator[Document | Deletion | BadRecord]:
    """Validate records into ``Document``s (title + text joined) and ``Deletion``s; never mutates the input
    dicts. With ``unique_ids`` (files), a repeated id is rejected (the first record with it is kept); a
    stream of changes passes ``False``: a later record of an id is its update. Without ``text_required``
    (partial writes, whose text may come from the stored document) a record may carry no text: its
    ``Document`` has an empty one. Documents and deletions already made pass through."""
    seen: dict[str, int] = {}
    for n, rec in enumerate(records, 1):
        if isinstance(rec, (BadRecord, Document, Deletion)):
            yield rec
            continue
        line, version = rec.get(LINE, n), rec.get(VERSION)
        doc_id = rec.get(id_field)
        if isinstance(doc_id, int) and not isinstance(doc_id, bool):
            doc_id = str(doc_id)
        problem = _id_problem(doc_id, id_field)
        if problem:
            yield BadRecord(problem, line=line)
            continue
        if rec.get(DELETED) is True:
            yield Deletion(doc_id, line, version)
            continue
        if unique_ids and doc_id in seen:
            yield BadRecord(f"duplicate id: line {seen[doc_id]} has the same id (that record is kept)",
                            line=line, id=doc_id)
            continue
        text = text_of(rec, text_fields)
        if isinstance(text, BadRecord):
            yield BadRecord(text.reason, line=line, id=doc_id)
            continue
        if not text and text_required:
            yield BadRecord(f"no text: fields {list(text_fields)} are missing, empty or whitespace", line=line,
                            id=doc_id)
            continue
        if unique_ids:
            seen[doc_id] = line
        fields = {k: v for k, v in rec.items() if k not in (id_field, LINE, VERSION, DELETED)}
        yield Document(id=doc_id, text=text, fields=fields, line=line, version=version)


def field_value(source: dict, path: str):
    """The value of field ``path`` in a document: the key itself, else dots walk into objects."""
    if path in source:
        return source[path]
    node = source
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def text_of(source: dict, text_fields: tuple[str, ...]) -> str | BadRecord:
    """The text to encode: the non-empty text fields, stripped and joined by newlines ("" when none);
    a ``BadRecord`` (without line or id) naming a field that holds something other than a string."""
    parts = []
    for name in text_fields:
        value = field_value(source, name)
        if value is None:
            continue
        if not isinstance(value, str):
            return BadRecord(f"text field {name!r} has type {type(value).__name__}, expected a string")
        if value.strip():
            parts.append(value.strip())
    return "\n".join(parts)


def _id_problem(doc_id, id_field: str) -> str | None:
    if doc_id is None:
        return f"id field {id_field!r} is missing or null"
    if not isinstance(doc_id, str):
        return f"id field {id_field!r} has type {type(doc_id).__name__}, expected a string or integer"
    if not doc_id.strip():
        return f"id field {id_field!r} is empty"
    return None


class DeadLetter:
    """Bad records and failed documents, one JSON object per line, opened on first use."""

    def __init__(self, path: str | None):
        self.path, self._fh = path, None

    def write(self, entry: dict) -> None:
        if self.path is None:
            return
        if self._fh is None:
            self._fh = open(self.path, "a", encoding="utf-8")
        self._fh.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()


def open_lines(path: str) -> IO[bytes]:
    """Raw lines of a file or stdin (``-``), gzip-compressed or not (told by its first bytes, whatever the
    name); decoding happens per line in ``read_jsonl``."""
    raw = sys.stdin.buffer if path == "-" else open(path, "rb")
    if raw.peek(2)[:2] != b"\x1f\x8b":
        return raw
    if path == "-":
        return gzip.open(raw, "rb")
    raw.close()
    return gzip.open(path, "rb")


def count_records(path: str) -> int | None:
    """The non-blank lines of a file as ``read_jsonl`` will see them (decompressed), for a progress bar's total;
    None for stdin, which can be read only once, and for a file that cannot be read to its end (a damaged
    ``.gz``: the ingest itself then indexes what it can read and names the error)."""
    if path == "-":
        return None
    try:
        with open_lines(path) as lines:
            return sum(1 for line in lines if line.strip())
    except (OSError, EOFError, zlib.error):
        return None

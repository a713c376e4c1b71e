"""Input records at the edge: JSON lines (text or bytes) -> validated ``Document``s or ``BadRecord``s
naming the line and the reason, and the dead-letter file the rejected ones go to."""
from __future__ import annotations

import json
import sys
from typing import IO, Iterable, Iterator

from .types import BadRecord, Document


def read_jsonl(lines: Iterable[str | bytes]) -> Iterator[dict | BadRecord]:
    """Parse JSON lines (text or raw bytes); a bad line becomes a ``BadRecord`` naming its line number."""
    for n, line in enumerate(lines, 1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield BadRecord(f"invalid UTF-8 at byte {exc.start}", line=n,
                                raw=line[:1000].decode("utf-8", "replace"))
                continue
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            yield BadRecord(f"malformed JSON: {exc.msg}", line=n, raw=line[:1000])
            continue
        if not isinstance(obj, dict):
            yield BadRecord("a JSON object was expected", line=n, raw=line[:1000])
            continue
        yield {**obj, "__line__": n}


def to_documents(records: Iterable[dict | BadRecord], id_field: str = "_id",
                 text_fields: tuple[str, ...] = ("title", "text")) -> Iterator[Document | BadRecord]:
    """Validate records into ``Document``s (title + text joined); never mutates the input dicts."""
    for n, rec in enumerate(records, 1):
        if isinstance(rec, BadRecord):
            yield rec
            continue
        line = rec.get("__line__", n)
        doc_id = rec.get(id_field)
        if isinstance(doc_id, int) and not isinstance(doc_id, bool):
            doc_id = str(doc_id)
        if not isinstance(doc_id, str) or not doc_id.strip():
            yield BadRecord(f"missing or invalid id field {id_field!r}", line=line)
            continue
        parts = []
        for name in text_fields:
            value = rec.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                parts = None
                yield BadRecord(f"text field {name!r} is not a string", line=line, id=doc_id)
                break
            if value.strip():
                parts.append(value.strip())
        if parts is None:
            continue
        if not parts:
            yield BadRecord(f"no text in fields {list(text_fields)}", line=line, id=doc_id)
            continue
        fields = {k: v for k, v in rec.items() if k not in (id_field, "__line__")}
        yield Document(id=doc_id, text="\n".join(parts), fields=fields, line=line)


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
    """Raw lines of a file or stdin (``-``); decoding happens per line in ``read_jsonl``."""
    if path == "-":
        return sys.stdin.buffer
    return open(path, "rb")

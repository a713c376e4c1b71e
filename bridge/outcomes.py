"""What became of each input record once the cluster answered: ``Outcome``s from a window and the bulk answers."""
from __future__ import annotations

from dataclasses import dataclass

from .actions import Missing, NoText, Unchanged
from .types import BadRecord, Document


@dataclass(frozen=True)
class Outcome:
    """What became of one input record: ``indexed``, ``deleted``, ``unchanged``, ``already_applied`` (its
    external version is not newer than the stored one: a replay), ``conflict`` (a partial write found the
    document changed since it was read: ``retry`` is to be read and encoded again), ``missing`` (a partial
    write of a document the cluster no longer holds), ``no_text`` (a stored document with empty text fields), ``invalid`` (bad input, never encoded) or ``refused`` (by
    the cluster); ``line`` is its position in the source."""

    status: str
    id: str | None
    line: int | None
    reason: str | None = None
    raw: str | None = None
    encoded: bool = False  # went through the model (index actions; not deletions or bad input)
    retry: Document | None = None

    @property
    def dead_letter_entry(self) -> dict:
        if self.status == "refused":
            return {"id": self.id, "reason": self.reason}
        entry = {"reason": self.reason, "line": self.line, "id": self.id, "raw": self.raw}
        return {k: v for k, v in entry.items() if v is not None}


def outcomes_of(batch: list, answers: list[tuple[bool, dict]]) -> list[Outcome]:
    """One ``Outcome`` per item of a window, in order; ``answers`` has one entry per bulk action."""
    out, answer = [], iter(answers)
    for item in batch:
        if isinstance(item, BadRecord):
            out.append(Outcome("invalid", item.id, item.line, item.reason, item.raw))
        elif isinstance(item, Unchanged):
            out.append(Outcome("unchanged", item.id, item.line))
        elif isinstance(item, Missing):
            out.append(Outcome("missing", item.id, item.line))
        elif isinstance(item, NoText):
            out.append(Outcome("no_text", item.id, item.line))
        else:
            ok, result = next(answer)
            (op, info), = result.items()
            status = _status(op, ok, info)
            out.append(Outcome(status, info.get("_id", item.id), item.line, None if ok else _reason(info),
                               encoded=op != "delete", retry=item.retry if status == "conflict" else None))
    return out


def _status(op: str, ok: bool, info: dict) -> str:
    status = info.get("status")
    if op in ("update", "create") and not ok and status in (404, 409):
        # a conditional write: the document was deleted (404) or changed / created (409) since it was read
        return "missing" if status == 404 else "conflict"
    if status == 409 and "version" in str(info.get("error", "")).lower():
        return "already_applied"  # external versioning: the cluster holds this record or a newer one
    if op == "delete":
        return "deleted" if ok or status == 404 else "refused"
    return "indexed" if ok else "refused"


def _reason(info: dict) -> str:
    err = info.get("error")
    if isinstance(err, dict):
        return f"{err.get('type')}: {err.get('reason')}"
    return str(err or f"status {info.get('status')}")

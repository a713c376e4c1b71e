"""Small value types passed between the pure stages."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class SparseVector:
    """Non-zero vocabulary weights of one text: ``indices`` (token ids, ascending) and ``values``; ``windows``:
    how many model windows were max-pooled into it (a long document's; pruning's top_k is per window)."""

    indices: np.ndarray
    values: np.ndarray
    windows: int = 1
    # long_documents="passages": each window's own vector and where its text starts (the vector above is their
    # element-wise max)
    passages: tuple["Passage", ...] = ()

    def __post_init__(self) -> None:
        if self.indices.shape != self.values.shape or self.indices.ndim != 1:
            raise ValueError("indices and values must be 1-d arrays of the same length")

    def __len__(self) -> int:
        return int(self.indices.shape[0])

    def to_tokens(self, vocab: list[str]) -> dict[str, float]:
        return {vocab[i]: float(v) for i, v in zip(self.indices.tolist(), self.values.tolist())}

    def dot(self, other: "SparseVector") -> float:
        common, a, b = np.intersect1d(self.indices, other.indices, assume_unique=True, return_indices=True)
        return float(np.dot(self.values[a].astype(np.float64), other.values[b].astype(np.float64)))

    @classmethod
    def empty(cls) -> "SparseVector":
        return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32))


@dataclass(frozen=True, eq=False)
class Passage:
    """One window of a long document in passage mode: the character ``offset`` where its text starts and its
    own vector."""

    offset: int
    vector: SparseVector


@dataclass(frozen=True)
class Stored:
    """A document as the cluster holds it: the concrete index it lives in, its ``_source`` (or the fields read)
    and the sequence number and primary term that a write conditional on this state must name."""

    index: str
    id: str
    source: dict
    seq_no: int | None = None
    primary_term: int | None = None


@dataclass(frozen=True)
class Document:
    """One record to index: its id, the text to encode, and the fields to store beside the vector (with a
    partial write: the fields to merge into the stored document). ``stored`` is the state it was read in, for
    a write conditional on it (an enabled index's documents belong to other writers too)."""

    id: str
    text: str
    fields: dict = field(default_factory=dict)
    line: int | None = None
    version: int | None = None  # external version (e.g. the stream offset): an older one never overwrites
    stored: Stored | None = None


@dataclass(frozen=True)
class Deletion:
    """A record that deletes document ``id`` (a stream's tombstone, or ``"_deleted": true``)."""

    id: str
    line: int | None = None
    version: int | None = None


@dataclass(frozen=True)
class BadRecord:
    """An input record that cannot be indexed, with where it came from and why."""

    reason: str
    line: int | None = None
    id: str | None = None
    raw: str | None = None

"""The answer of a search: ``Hits`` (best first, with how complete they are) of ``Hit``s, and the client-side
explanation of a hit's score."""
from __future__ import annotations

from dataclasses import dataclass


class Hits(list):
    """The hits of one search, best first, with how complete they are: ``partial`` when some shards failed
    (a node lost, say) or the search timed out — such results are reported, never passed off as whole.
    ``fusion`` names how a hybrid search was fused (``client-side rrf``, ``native rrf``...), ``two_phase`` how a
    two-phase search ran (``rescore`` in standard DSL, or ``native``: the plugin's processor); else None."""

    def __init__(self, hits=(), shards: dict | None = None, timed_out: bool = False, fusion: str | None = None,
                 two_phase: str | None = None, index: str | None = None, model=None):
        super().__init__(hits)
        self.shards, self.timed_out, self.fusion = dict(shards or {}), timed_out, fusion
        self.two_phase = two_phase
        self.index, self.model = index, model  # the concrete index that answered, and its ModelStamp

    @property
    def partial(self) -> bool:
        return self.timed_out or bool(self.shards.get("failed")) or \
            self.shards.get("successful", 0) + self.shards.get("skipped", 0) < self.shards.get("total", 0)

    def as_dict(self) -> dict:
        """The one JSON shape of a search's answer, the CLI's (``search --format json``) and the service's
        (``/search``, which adds ``took_ms`` and, explained, the query's ``tokens`` and ``text_fields``)."""
        return {"hits": [h.as_dict() for h in self], "partial": self.partial, "shards": self.shards,
                **({"fusion": self.fusion} if self.fusion else {}),
                **({"two_phase": self.two_phase} if self.two_phase else {}),
                **({"index": self.index} if self.index else {}),
                **({"model": {"model": self.model.model, "revision": self.model.revision}} if self.model else {})}

    def describe_partial(self) -> str:
        total, ok = self.shards.get("total", 0), self.shards.get("successful", 0) + self.shards.get("skipped", 0)
        return f"{total - ok} of {total} shards did not answer" + ("; the search timed out" if self.timed_out else "")


@dataclass(frozen=True)
class Hit:
    id: str
    score: float  # SPLADE dot product (cluster score with query scaling undone)
    source: dict
    explain: tuple[tuple[str, float], ...] | None = None
    splade: float | None = None  # explained: the SPLADE dot product of the query and the stored document weights
    passage: int | None = None  # explained, passage mode: where the passage that scored starts (a character offset)

    def as_dict(self) -> dict:
        out = {"_id": self.id, "_score": self.score, **({"_source": self.source} if self.source else {})}
        if self.explain is not None:
            out["explain"] = [{"token": t, "contribution": c} for t, c in self.explain]
        if self.splade is not None:
            out["splade_score"] = self.splade
        if self.passage is not None:
            out["passage"] = {"offset": self.passage}
        return out


def explain_hit(query_tokens: dict[str, float], doc_tokens: dict[str, float],
                top: int = 5) -> tuple[tuple[str, float], ...]:
    """Top contributions ``q[t] * d[t]`` of one hit, computed client-side."""
    contrib = [(t, w * doc_tokens[t]) for t, w in query_tokens.items() if t in doc_tokens]
    contrib.sort(key=lambda tc: (-tc[1], tc[0]))
    return tuple(contrib[:top])

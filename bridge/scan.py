"""Reading every stored document of an index, sliced so that N processes share the work without overlap.

OpenSearch: one point-in-time per index, read with ``search_after`` on ``_doc``. ``_doc`` is a shard-local
number and OpenSearch has no ``_shard_doc`` tiebreaker, so a page that spans shards can end between two
equal sort values and the next page skips the rest (seen on a 2-shard index); every search here is therefore
confined to one shard: the slice count is a multiple of the shard count, and a slice whose ``max`` is at least
the shard count lies within shard ``id % shards``. Slice ``I/N`` reads the engine slices ``I, I+N, I+2N, ...``.
Elsewhere (Elasticsearch): a sliced scroll. Each document comes with the ``_seq_no``/``_primary_term`` it had
in the snapshot, for writes conditional on it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterator, Sequence

from .connection.engines import engine_of, helpers
from .errors import ConfigError
from .types import Stored

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Slice:
    """Part ``index`` of ``count`` equal parts of an index (``0/1``: all of it)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ConfigError(f"slice must be I/N with 0 <= I < N, got {self.index}/{self.count}")

    @classmethod
    def parse(cls, text: str) -> "Slice":
        try:
            index, count = (int(part) for part in text.split("/"))
        except ValueError:
            raise ConfigError(f"slice must be I/N (e.g. 0/4), got {text!r}") from None
        return cls(index, count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def read_documents(client, name: str, *, fields: Sequence[str] | None = None, query: dict | None = None,
                   part: Slice = Slice(), page: int = 500, keep_alive: str = "5m") -> Iterator[Stored]:
    """Every document of index or alias ``name`` in slice ``part`` (``fields``: the ``_source`` fields to
    read, None for all; ``query``: only the documents it matches)."""
    indices = sorted(client.indices.get(index=name))
    if engine_of(client) != "opensearch":
        yield from _scroll(client, indices, fields, query, part, page)
        return
    for index in indices:
        settings = client.indices.get_settings(index=index)[index]["settings"]["index"]
        try:
            pit = client.create_pit(index=index, params={"keep_alive": keep_alive})["pit_id"]
        except Exception as exc:  # OpenSearch before 2.4 has no point-in-time: a sliced scroll instead
            log.info("point-in-time unavailable on %s (%s); using scroll", index, type(exc).__name__)
            yield from _scroll(client, [index], fields, query, part, page)
            continue
        yield from _pit(client, index, pit, int(settings.get("number_of_shards", 1)), fields, query, part, page,
                        keep_alive)


def _body(fields, query, page: int) -> dict:
    body: dict = {"size": page, "sort": [{"_doc": "asc"}], "seq_no_primary_term": True,
                  "query": query or {"match_all": {}}}
    if fields is not None:
        body["_source"] = list(fields)
    return body


def _stored(hit: dict) -> Stored:
    return Stored(hit["_index"], hit["_id"], hit.get("_source") or {}, hit.get("_seq_no"), hit.get("_primary_term"))


def _pit(client, index: str, pit: str, shards: int, fields, query, part: Slice, page: int,
         keep_alive: str) -> Iterator[Stored]:
    slices = part.count * shards
    try:
        for engine_slice in range(part.index, slices, part.count):
            after = None
            while True:
                body = {**_body(fields, query, page), "pit": {"id": pit, "keep_alive": keep_alive}}
                if slices > 1:
                    body["slice"] = {"id": engine_slice, "max": slices}
                if after is not None:
                    body["search_after"] = after
                hits = client.search(body=body)["hits"]["hits"]
                if not hits:
                    break
                yield from map(_stored, hits)
                after = hits[-1]["sort"]
    finally:
        try:
            client.delete_pit(body={"pit_id": [pit]})
        except Exception as exc:  # it expires by itself after keep_alive
            log.warning("could not delete point-in-time of %s (%s)", index, type(exc).__name__)


def _scroll(client, indices: list[str], fields, query, part: Slice, page: int) -> Iterator[Stored]:
    body = _body(fields, query, page)
    body.pop("size")
    if part.count > 1:
        body["slice"] = {"id": part.index, "max": part.count}
    for hit in helpers(client).scan(client, index=",".join(indices), query=body, size=page):
        yield _stored(hit)

"""One reindex per alias: a lease held in a small lock index (``LOCKS``), one document per alias, taken by
``create`` (atomic: two processes cannot both create it), renewed by updates conditional on its ``_seq_no``, and
taken over by a conditional update once it has expired (its holder died). A holder that finds its lease taken
stops before it writes anything more. A reindex shared by N processes holds one more lease per slice
(``part``: ``<alias>/slice/I/N``), whose record says how far that slice is (``progress``) and whether it is
copied."""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable
from datetime import datetime, timezone

from .connection.failures import client_exceptions, status_of
from .errors import ReindexError

log = logging.getLogger(__name__)

LOCKS = "splade-bridge-locks"


def _now() -> float:
    return time.time()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class LeaseHeld(ReindexError):
    """Another live process holds the lease (or took it over first)."""


CARRIED = ("marks", "slices", "ready")  # what a takeover of the same target keeps from the record it replaces


@dataclass
class Lease:
    client: object
    alias: str
    seconds: float = 60.0
    part: str = ""   # a slice of a shared reindex ("I/N"), or "" for the alias's own lease
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    lost: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    progress: dict = field(default_factory=dict)  # recorded with each renewal

    @property
    def key(self) -> str:
        return lease_id(self.alias, self.part)

    @property
    def what(self) -> str:
        return f"slice {self.part} of the reindex of {self.alias!r}" if self.part else f"the reindex of {self.alias!r}"

    def acquire(self, target: str, stale: Callable[[dict], bool] = lambda other: False, **note) -> dict | None:
        """Take the lease (or one that expired, or a live one that ``stale`` says belongs to something else);
        ``ReindexError`` naming the holder otherwise. Returns the taken-over holder's record (``blocking``: it
        died holding a write block; ``marks``: where its catch-up starts)."""
        _ensure_index(self.client)
        now = _now()
        doc = {"owner": self.owner, "target": target, "started": now, "renewed": now, "seconds": self.seconds, **note}
        _, _, transport = client_exceptions()
        try:
            resp = self.client.index(index=LOCKS, id=self.key, body=doc, op_type="create", refresh=True)
            self._version = (resp["_seq_no"], resp["_primary_term"])
            return None
        except transport as exc:
            if status_of(exc) != 409:
                raise
        held = self.client.get(index=LOCKS, id=self.key)
        other = held["_source"]
        expires = expiry(other)
        if expires > now and not stale(other):
            raise LeaseHeld(
                f"{self.what} is running into {other.get('target')!r} by {other.get('owner')} since "
                f"{_iso(other['started'])}; if that process is dead, its lease expires at {_iso(expires)}: rerun "
                "then to take it over")
        log.warning("taking over the lease of %s from %s (expired %s)", self.what, other.get("owner"), _iso(expires))
        if other.get("target") == target:  # where its catch-up starts survives however many takeovers
            doc = {**{k: other[k] for k in CARRIED if k in other}, **doc}
        try:
            resp = self.client.index(index=LOCKS, id=self.key, body=doc, if_seq_no=held["_seq_no"],
                                     if_primary_term=held["_primary_term"], refresh=True)
        except transport as exc:
            if status_of(exc) == 409:
                raise LeaseHeld(f"another process took over {self.what} first") from None
            raise
        self._version = (resp["_seq_no"], resp["_primary_term"])
        return other

    def renew(self, **note) -> None:
        """Extend the lease (recording ``note`` in it, e.g. ``blocking=True``); sets ``lost`` (and raises) if
        another process holds it now."""
        _, _, transport = client_exceptions()
        held = {"owner": self.owner, "renewed": _now(), **self.progress, **note}
        try:
            with self._lock:
                resp = self.client.update(index=LOCKS, id=self.key, body={"doc": held},
                                          if_seq_no=self._version[0], if_primary_term=self._version[1], refresh=True)
                self._version = (resp["_seq_no"], resp["_primary_term"])
        except transport as exc:
            if status_of(exc) in (404, 409):
                self.lost.set()
                raise ReindexError(f"the lease of {self.what} was taken over by another process; "
                                   "this one stops") from None
            raise

    def check(self) -> None:
        if self.lost.is_set():
            raise ReindexError(f"the lease of {self.what} was lost (taken over); this process stops")

    def keep(self) -> threading.Thread:
        """Renew every third of the lease in a daemon thread until released or lost."""
        stop = self._stop = threading.Event()

        def loop():
            while not stop.wait(self.seconds / 3):
                try:
                    self.renew()
                except ReindexError:
                    return
                except Exception as exc:  # the cluster briefly away: try again next time
                    log.warning("could not renew the lease of %s (%s)", self.what, type(exc).__name__)
        thread = self._thread = threading.Thread(target=loop, name="splade-lease", daemon=True)
        thread.start()
        return thread

    def release(self, keep: dict | None = None) -> None:
        """Stop renewing and delete the record, or (``keep``) leave it, updated with ``keep`` — e.g. expired at
        once (``renewed: 0``) so that a rerun takes it over where this one stopped."""
        if getattr(self, "_stop", None):
            self._stop.set()
            self._thread.join(timeout=30)
        if self.lost.is_set():
            return
        try:
            if keep is not None:
                with self._lock:
                    self.client.update(index=LOCKS, id=self.key, body={"doc": {**self.progress, **keep}},
                                       if_seq_no=self._version[0], if_primary_term=self._version[1], refresh=True)
            else:
                self.client.delete(index=LOCKS, id=self.key, if_seq_no=self._version[0],
                                   if_primary_term=self._version[1], refresh=True)
        except Exception as exc:
            log.warning("could not release the lease of %s (%s); it expires by itself", self.what, type(exc).__name__)


def lease_id(alias: str, part: str = "") -> str:
    return f"{alias}/slice/{part}" if part else alias


def expiry(record: dict) -> float:
    """When a lease record expires (its holder's last renewal plus its length)."""
    return record["renewed"] + record.get("seconds", 60.0)


def read(client, ids: list[str]) -> dict[str, dict]:
    """The lease records of ``ids`` that exist, by id."""
    if not client.indices.exists(index=LOCKS):
        return {}
    docs = client.mget(index=LOCKS, body={"ids": ids})["docs"]
    return {d["_id"]: d["_source"] for d in docs if d.get("found")}


def records(client) -> list[dict]:
    """Every lease record (running reindexes and their slices), for ``status``: ``id``, holder, target, times
    (ISO), ``live`` (not expired), and what the holder recorded (``slices``, ``copied``, ``done``, ``blocking``)."""
    if not client.indices.exists(index=LOCKS):
        return []
    client.indices.refresh(index=LOCKS)
    hits = client.search(index=LOCKS, body={"size": 1000, "query": {"match_all": {}}, "sort": ["_doc"]})["hits"]["hits"]
    out = []
    for hit in hits:
        r = {k: v for k, v in hit["_source"].items() if k != "marks"}
        out.append({"id": hit["_id"], **r, "started": _iso(r["started"]), "renewed": _iso(r["renewed"]),
                    "live": expiry(hit["_source"]) > _now()})
    return sorted(out, key=lambda r: r["id"])


def written(records_: list[dict]) -> dict[str, str]:
    """The targets that live reindexes (or slices of one not yet copied) write, of ``records(client)``, each
    with the id of a lease writing it."""
    return {r.get("target"): r["id"] for r in records_ if r["live"] and not r.get("done")}


def _ensure_index(client) -> None:
    if not client.indices.exists(index=LOCKS):
        _, _, transport = client_exceptions()
        try:
            client.indices.create(index=LOCKS, body={"settings": {"index": {"number_of_shards": 1}},
                                                     "mappings": {"dynamic": False, "properties": {}}})
        except transport as exc:
            if "resource_already_exists" not in str(exc):
                raise

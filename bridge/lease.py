"""One reindex per alias: a lease held in a small lock index (``LOCKS``), one document per alias, taken by
``create`` (atomic: two processes cannot both create it), renewed by updates conditional on its ``_seq_no``, and
taken over by a conditional update once it has expired (its holder died). A holder that finds its lease taken
stops before it writes anything more."""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .connection.failures import client_exceptions, status_of
from .errors import ReindexError

log = logging.getLogger(__name__)

LOCKS = "splade-bridge-locks"


def _now() -> float:
    return time.time()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Lease:
    client: object
    alias: str
    seconds: float = 60.0
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}")
    lost: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def acquire(self, target: str) -> dict | None:
        """Take the alias's lease (or one that expired); ``ReindexError`` naming the holder otherwise. Returns
        the expired holder's record when one was taken over (``blocking``: it died holding a write block)."""
        _ensure_index(self.client)
        now = _now()
        doc = {"owner": self.owner, "target": target, "started": now, "renewed": now, "seconds": self.seconds}
        _, _, transport = client_exceptions()
        try:
            resp = self.client.index(index=LOCKS, id=self.alias, body=doc, op_type="create", refresh=True)
            self._version = (resp["_seq_no"], resp["_primary_term"])
            return None
        except transport as exc:
            if status_of(exc) != 409:
                raise
        held = self.client.get(index=LOCKS, id=self.alias)
        other = held["_source"]
        expires = other["renewed"] + other.get("seconds", self.seconds)  # the holder's lease
        if expires > now:
            raise ReindexError(
                f"alias {self.alias!r} is being reindexed into {other.get('target')!r} by {other.get('owner')} since "
                f"{_iso(other['started'])}; if that process is dead, its lease expires at {_iso(expires)}: rerun "
                "then to take it over")
        log.warning("taking over the reindex lease of %s from %s (expired %s)", self.alias, other.get("owner"),
                    _iso(expires))
        try:
            resp = self.client.index(index=LOCKS, id=self.alias, body=doc, if_seq_no=held["_seq_no"],
                                     if_primary_term=held["_primary_term"], refresh=True)
        except transport as exc:
            if status_of(exc) == 409:
                raise ReindexError(f"another process took over the reindex of {self.alias!r} first") from None
            raise
        self._version = (resp["_seq_no"], resp["_primary_term"])
        return other

    def renew(self, **note) -> None:
        """Extend the lease (recording ``note`` in it, e.g. ``blocking=True``); sets ``lost`` (and raises) if
        another process holds it now."""
        _, _, transport = client_exceptions()
        held = {"owner": self.owner, "renewed": _now(), **note}
        try:
            with self._lock:
                resp = self.client.update(index=LOCKS, id=self.alias, body={"doc": held},
                                          if_seq_no=self._version[0], if_primary_term=self._version[1], refresh=True)
                self._version = (resp["_seq_no"], resp["_primary_term"])
        except transport as exc:
            if status_of(exc) in (404, 409):
                self.lost.set()
                raise ReindexError(f"the reindex lease of {self.alias!r} was taken over by another process; "
                                   "this one stops") from None
            raise

    def check(self) -> None:
        if self.lost.is_set():
            raise ReindexError(f"the reindex lease of {self.alias!r} was lost (taken over); this process stops")

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
                    log.warning("could not renew the reindex lease of %s (%s)", self.alias, type(exc).__name__)
        thread = self._thread = threading.Thread(target=loop, name="splade-lease", daemon=True)
        thread.start()
        return thread

    def release(self) -> None:
        if getattr(self, "_stop", None):
            self._stop.set()
            self._thread.join(timeout=30)
        if self.lost.is_set():
            return
        try:
            self.client.delete(index=LOCKS, id=self.alias, if_seq_no=self._version[0],
                               if_primary_term=self._version[1], refresh=True)
        except Exception as exc:
            log.warning("could not release the reindex lease of %s (%s); it expires by itself", self.alias,
                        type(exc).__name__)


def _ensure_index(client) -> None:
    if not client.indices.exists(index=LOCKS):
        _, _, transport = client_exceptions()
        try:
            client.indices.create(index=LOCKS, body={"settings": {"index": {"number_of_shards": 1}},
                                                     "mappings": {"dynamic": False, "properties": {}}})
        except transport as exc:
            if "resource_already_exists" not in str(exc):
                raise

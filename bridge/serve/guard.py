"""What the query service refuses before any handler runs: bodies over the byte limit (counted as they
are read, chunked or not) or not received within ``body_seconds`` (408), JSON nested too deeply, requests
without a valid bearer token, and requests beyond the in-flight cap (429 with ``Retry-After``) — plus the
index allow-list the handlers consult. A request takes its in-flight slot only once its whole body is in: a
client trickling a body holds no slot, so it cannot starve the others.

``Guard`` is plain ASGI middleware, so a refused request costs no parsing, no model forward and no
cluster request; ``/healthz`` is exempt from the token and the in-flight cap so probes keep working.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Callable

log = logging.getLogger(__name__)

EXEMPT = frozenset({"/healthz", "/readyz"})
INDEX_NAME = re.compile(r"^[a-z0-9][a-z0-9_.+-]{0,254}$")  # one concrete name: no wildcards, commas, '_all'


@dataclass(frozen=True)
class GuardConfig:
    max_body_bytes: int = 64 * 1024
    max_json_depth: int = 32
    max_in_flight: int = 64
    body_seconds: float = 10.0   # the whole body must arrive within this
    tokens: frozenset[str] = field(default=frozenset(), repr=False)  # bearer tokens; empty = no auth
    public: frozenset[str] = frozenset()  # paths served without a token: static files that hold no data

    def __post_init__(self) -> None:
        if self.max_body_bytes < 1 or self.max_json_depth < 1 or self.max_in_flight < 1 or self.body_seconds <= 0:
            raise ValueError("max_body_bytes, max_json_depth and max_in_flight must be >= 1, body_seconds > 0")


@dataclass(frozen=True)
class IndexAllowList:
    """The indices, aliases or patterns (``docs-*``) the service may search; nothing else."""

    patterns: tuple[str, ...] = ()

    def allows(self, name: str) -> bool:
        return bool(INDEX_NAME.match(name)) and any(fnmatchcase(name, p) for p in self.patterns)

    def names(self) -> list[str]:
        """The names served as they are (no wildcard), in order, once each."""
        return list(dict.fromkeys(p for p in self.patterns if not any(c in p for c in "*?[")))


def json_depth(value) -> int:
    depth, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, (dict, list)):
            depth = max(depth, d)
            stack.extend((c, d + 1) for c in (v.values() if isinstance(v, dict) else v))
    return depth


class Guard:
    def __init__(self, app, cfg: GuardConfig, on_reject: Callable[[str, int], None] = lambda path, status: None):
        self.app, self.cfg, self.on_reject = app, cfg, on_reject
        self.in_flight = 0
        self._tokens = [t.encode() for t in cfg.tokens]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path in EXEMPT:
            return await self.app(scope, receive, send)
        if self._tokens and path not in self.cfg.public and not self._authorized(scope):
            return await self._refuse(send, path, 401, "a valid bearer token is required",
                                      [(b"www-authenticate", b'Bearer realm="splade-bridge"')])
        try:
            body = await asyncio.wait_for(self._read_body(scope, receive, send, path), self.cfg.body_seconds)
        except asyncio.TimeoutError:
            return await self._refuse(send, path, 408, f"request body not received within {self.cfg.body_seconds:g} s",
                                      [(b"connection", b"close")])
        if body is None:
            return
        if self.in_flight >= self.cfg.max_in_flight:
            return await self._refuse(send, path, 429, f"over {self.cfg.max_in_flight} requests in flight; retry",
                                      [(b"retry-after", b"1")])
        self.in_flight += 1
        try:
            replayed = False

            async def replay():
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
        finally:
            self.in_flight -= 1

    def _authorized(self, scope) -> bool:
        header = dict(scope.get("headers", ())).get(b"authorization", b"")
        scheme, _, token = header.partition(b" ")
        ok = False
        for known in self._tokens:  # every token compared, in constant time each
            ok |= hmac.compare_digest(token.strip(), known)
        return scheme.lower() == b"bearer" and ok

    async def _read_body(self, scope, receive, send, path: str) -> bytes | None:
        """The whole body, or None after answering 413/400: at most ``max_body_bytes`` are ever held."""
        limit = self.cfg.max_body_bytes
        length = dict(scope.get("headers", ())).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            await self._refuse(send, path, 413, f"request body over {limit} bytes")
            return None
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._refuse(send, path, 413, f"request body over {limit} bytes")
                return None
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body:
            try:
                depth = json_depth(json.loads(body))
            except RecursionError:
                depth = self.cfg.max_json_depth + 1
            except ValueError:
                depth = 0  # malformed JSON: the handler answers 422
            if depth > self.cfg.max_json_depth:
                await self._refuse(send, path, 400, f"JSON nested deeper than {self.cfg.max_json_depth} levels")
                return None
        return body

    async def _refuse(self, send, path: str, status: int, message: str, headers=()) -> None:
        self.on_reject(path, status)
        payload = json.dumps({"error": message}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()), *headers]})
        await send({"type": "http.response.body", "body": payload})

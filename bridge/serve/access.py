"""The service's access log: one record per request on the ``bridge.serve.access`` logger, with method,
path, status, duration, client and request id (``X-Request-ID`` when the client sends one) as fields —
refusals by the guard included. Query strings, bodies and headers (tokens) are never logged."""
from __future__ import annotations

import logging
import time
import uuid

log = logging.getLogger(__name__)


class AccessLog:
    """Plain ASGI middleware; the outermost layer, so it sees every answer."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), {"code": 500}
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode("latin-1")[:128] or uuid.uuid4().hex

        async def recorded(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"x-request-id", request_id.encode("latin-1"))]}
            await send(message)

        try:
            await self.app(scope, receive, recorded)
        finally:
            ms = (time.perf_counter() - started) * 1000
            client = scope.get("client") or ("-", 0)
            log.info("%s %s %d %.1fms", scope["method"], scope["path"], status["code"], ms,
                     extra={"http": {"method": scope["method"], "path": scope["path"], "status": status["code"],
                                     "duration_ms": round(ms, 2), "client": client[0],
                                     "request_id": request_id}})

"""Reading the client libraries' failures: their HTTP status, whether waiting can heal them, and the
typed ``BridgeError`` each one is (so the CLI and the service each need one table of typed errors)."""
from __future__ import annotations

import importlib
import socket
import ssl
import urllib.error

from ..errors import (AuthenticationFailed, BridgeError, ClusterRefused, ClusterUnreachable, IndexNotFound)
from .engines import FAMILIES

TRANSIENT_STATUS = frozenset({429, 502, 503, 504})


def status_of(exc: BaseException):
    """The HTTP status of a client library's error (``status_code`` in opensearch-py and
    elasticsearch-py 7, ``status`` in elasticsearch-py 8, ``code`` in urllib); None when there is none."""
    for name in ("status_code", "status", "code"):
        value = getattr(exc, name, None)
        if isinstance(value, int):
            return value
    return None


def client_exceptions() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
    """(connection errors, not-found errors, transport errors) of every installed client library."""
    conn, missing, transport = [], [], []
    for fam in FAMILIES.values():
        try:
            exc = importlib.import_module(f"{fam.module}.exceptions")
        except ImportError:
            continue
        conn.append(exc.ConnectionError)
        missing.append(exc.NotFoundError)
        transport.append(getattr(exc, "TransportError", getattr(exc, "ApiError", Exception)))
    return tuple(conn), tuple(missing), tuple(transport)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the cluster was unreachable, timed out, restarting or overloaded."""
    connection_errors, _, transport_errors = client_exceptions()
    if isinstance(exc, ssl.SSLError) or type(exc).__name__ == "SSLError":
        return False  # a certificate problem does not heal by waiting
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, ssl.SSLError):
        return False
    if isinstance(exc, connection_errors):
        return True
    if isinstance(exc, transport_errors):
        # a write block (403 cluster_block_exception) is held for a moment by a reindex's last catch-up
        return status_of(exc) in TRANSIENT_STATUS or (status_of(exc) == 403 and "cluster_block_exception" in str(exc))
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code in TRANSIENT_STATUS
    return isinstance(exc, (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError))


def as_bridge_error(exc: BaseException) -> BaseException:
    """The typed error a client-library failure is (``exc`` itself when it is none of theirs)."""
    if isinstance(exc, BridgeError):
        return exc
    connection_errors, not_found, transport_errors = client_exceptions()
    if isinstance(exc, connection_errors):
        detail = str(getattr(exc, "info", None) or getattr(exc, "error", None) or exc)
        detail = detail.rsplit(": ", 1)[-1] if ": " in detail else detail
        return ClusterUnreachable(f"cannot reach the cluster ({type(exc).__name__}: {detail})")
    if isinstance(exc, transport_errors):
        status = status_of(exc)
        info = getattr(exc, "info", None) or getattr(exc, "body", None)
        info = info if isinstance(info, dict) else {}
        err = info.get("error") if isinstance(info.get("error"), dict) else {}
        # the root cause is the specific one ("all shards failed" says nothing of why)
        root = (err.get("root_cause") or [{}])[0].get("reason")
        reason = root or err.get("reason") or getattr(exc, "error", exc)
        message = f"cluster refused the request (HTTP {status}): {reason}"
        if isinstance(exc, not_found):
            return IndexNotFound(message)
        if status in (401, 403):
            return AuthenticationFailed(message + ": check the credentials (username and password, API key or "
                                        "AWS SigV4 settings)", status)
        return ClusterRefused(message, status)
    return exc


def describe(exc: BaseException) -> str:
    """A one-line, credential-free description of any failure."""
    typed = as_bridge_error(exc)
    return str(typed) or type(typed).__name__

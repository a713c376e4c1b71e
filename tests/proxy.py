"""Stand-ins at the network edge for the connection-error tests: a reverse proxy in front of the real
node that can demand basic auth (as the security plugin does), serve TLS with a self-signed certificate
and hold bulk requests past the client's timeout, and a listener that accepts connections and never
answers."""
from __future__ import annotations

import base64
import json
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def self_signed(directory: Path) -> tuple[Path, Path]:
    """(cert, key) for 127.0.0.1, made with the openssl command line."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


class AuthProxy:
    """``user=None``: no authentication. ``slow_bulk_every=N``: every Nth ``_bulk`` request is held for
    ``slow_seconds`` before it is forwarded (the client times out; the request still lands)."""

    def __init__(self, upstream: str, user: str | None = None, password: str | None = None,
                 tls: tuple[Path, Path] | None = None, slow_bulk_every: int = 0, slow_seconds: float = 0.0,
                 verify=None):
        """``verify(method, path, headers, body)`` returns why a request is refused (403), or None to forward it."""
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode() if user else None
        self.requests: list[str] = []
        self.refused: list[str] = []
        self.slowed = 0
        lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _handle(self):
                with lock:
                    proxy.requests.append(f"{self.command} {self.path}")
                    bulks = sum("_bulk" in r for r in proxy.requests)
                    slow = "_bulk" in self.path and slow_bulk_every and bulks % slow_bulk_every == 0
                    proxy.slowed += bool(slow)
                if expected and self.headers.get("authorization") != expected:
                    self._reply(401, json.dumps({"error": {"type": "security_exception",
                                                           "reason": "authentication failed"}, "status": 401}))
                    return
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                reason = verify and verify(self.command, self.path, self.headers, body or b"")
                if reason:
                    with lock:
                        proxy.refused.append(f"{self.command} {self.path}: {reason}")
                    self._reply(403, json.dumps({"message": reason}))
                    return
                if slow:
                    time.sleep(slow_seconds)
                req = urllib.request.Request(upstream + self.path, data=body, method=self.command,
                                             headers={"content-type": self.headers.get("content-type",
                                                                                       "application/json")})
                try:
                    with urllib.request.urlopen(req, timeout=60) as resp:
                        # Elasticsearch clients check this header (7.14+): a proxy passes it on
                        self._reply(resp.status, resp.read(), resp.headers.get("x-elastic-product"))
                except urllib.error.HTTPError as exc:
                    self._reply(exc.code, exc.read())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (timeout tests)

            def _reply(self, status: int, body, product: str | None = None):
                data = body.encode() if isinstance(body, str) else body
                self.send_response(status)
                self.send_header("content-type", "application/json")
                if product:
                    self.send_header("x-elastic-product", product)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "AuthProxy":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class Silent:
    """Accepts TCP connections (the kernel's backlog) and never answers."""

    def __enter__(self) -> "Silent":
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]

"""The worker's Prometheus metrics and its HTTP endpoint: ``/metrics``; ``/healthz`` (the process answers: a
liveness probe); ``/readyz`` (200 only while running with partitions assigned and the cluster reachable: a
readiness probe; 503 with the reason otherwise)."""
from __future__ import annotations

import json
import threading
import time
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

BUCKETS = (.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)


class WorkerMetrics:
    def __init__(self):
        self.registry = r = CollectorRegistry()
        self.consumed = Counter("splade_worker_messages_consumed", "Messages consumed", registry=r)
        self.documents = Counter("splade_worker_documents", "Records by outcome (indexed, deleted, "
                                 "already_applied, dead_lettered)", ["outcome"], registry=r)
        self.bulk_retries = Counter("splade_worker_bulk_retries", "Bulk requests and documents resent", registry=r)
        self.latency = Histogram("splade_worker_stage_seconds", "Seconds per window (encode) and per bulk request",
                                 ["stage"], buckets=BUCKETS, registry=r)
        self.lag = Gauge("splade_worker_consumer_lag", "Messages behind the partition's end", ["topic", "partition"],
                         registry=r)
        self.uncommitted = Gauge("splade_worker_uncommitted_messages", "Messages of the batch at hand: consumed, "
                                 "not yet committed (delivered again if this worker dies)", registry=r)
        self.rebalances = Counter("splade_worker_rebalances", "Partition assignments and revocations", ["kind"],
                                  registry=r)
        self.state = {"status": "starting", "assigned": [], "paused": False, "last_batch": None}
        self._lock = threading.Lock()

    def observe(self, stage: str, seconds: float) -> None:
        self.latency.labels(stage).observe(seconds)

    def set_state(self, **changes) -> None:
        with self._lock:
            self.state.update(changes)

    def health(self) -> dict:
        with self._lock:
            out = dict(self.state)
        if out["last_batch"] is not None:
            out["last_batch_seconds_ago"] = round(time.time() - out.pop("last_batch"), 1)
        return out

    def ready(self) -> tuple[bool, str]:
        """(ready, why not): running, not paused for an unreachable cluster, with partitions assigned."""
        state = self.health()
        if state["status"] != "running":
            return False, f"worker {state['status']}"
        if state["paused"]:
            return False, "the cluster is unreachable: consumption paused"
        if not state["assigned"]:
            return False, "no partitions assigned (more workers than partitions, or joining the group)"
        return True, ""

    def serve(self, port: int, host: str = "127.0.0.1"):
        """Serve ``/metrics``, ``/healthz`` and ``/readyz`` on a daemon thread; returns the server
        (``shutdown()`` stops it)."""
        metrics_app = make_wsgi_app(self.registry)

        def app(environ, start_response):
            path = environ.get("PATH_INFO")
            if path in ("/healthz", "/readyz"):
                ready, why = self.ready()
                ok = path == "/healthz" or ready
                body = json.dumps({**self.health(), "ready": ready, **({"reason": why} if why else {})}).encode()
                start_response("200 OK" if ok else "503 Service Unavailable", [("content-type", "application/json")])
                return [body]
            return metrics_app(environ, start_response)

        class Quiet(WSGIRequestHandler):
            def log_message(self, *args):
                pass

        server = make_server(host, port, app, handler_class=Quiet)
        threading.Thread(target=server.serve_forever, name="splade-worker-metrics", daemon=True).start()
        return server

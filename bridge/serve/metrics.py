"""The service's Prometheus metrics (``GET /metrics``), one registry per app."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


def service_metrics(registry: CollectorRegistry) -> dict:
    return {
        "requests": Counter("splade_requests", "HTTP requests", ["endpoint", "status"], registry=registry),
        "latency": Histogram("splade_request_seconds", "Request latency", ["endpoint"], registry=registry,
                             buckets=(.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5)),
        "batch": Histogram("splade_batch_size", "Texts per model forward", registry=registry,
                           buckets=(1, 2, 4, 8, 16, 32, 64, 128)),
        "cache": Counter("splade_expand_cache", "Expansion cache lookups", ["result"], registry=registry),
        "moves": Counter("splade_alias_changes", "Served names seen pointing at another concrete index",
                         registry=registry),
        "loads": Counter("splade_model_loads", "Query models loaded", ["result"], registry=registry),
    }

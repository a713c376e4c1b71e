"""Client creation: the right library's client for the cluster (detected from ``GET /`` unless the
engine is given), built from a ``ConnectionConfig``; and small reads every layer above needs."""
from __future__ import annotations

import logging
import warnings

from ..config import ConnectionConfig
from .auth import client_kwargs
from .detect import detect
from .engines import FAMILIES, check_engine, client_library

log = logging.getLogger(__name__)

DEFAULT_CLAUSE_BUDGET = 1024
POOL_SIZE = 16  # connections kept per node: enough for concurrent bulk senders and searches


def connect(cfg: ConnectionConfig, engine: str | None = None):
    """A client of the right library for the cluster; ``engine`` skips detection (OpenSearch Serverless has no
    ``GET /``: it is OpenSearch)."""
    if cfg.aws_sigv4 and cfg.aws_service == "aoss":
        engine = engine or "opensearch"
    engine = check_engine(engine or detect(cfg)[0])
    if not cfg.verify_certs:
        warnings.warn("TLS certificate verification is disabled (--insecure)", stacklevel=2)
    return build_client(cfg, engine)


def build_client(cfg: ConnectionConfig, engine: str):
    """The client for ``engine`` with no request made (``connect`` detects the engine first)."""
    lib = client_library(engine)
    new = engine == "opensearch" or _major(lib) < 8  # opensearch-py and elasticsearch-py 7 share argument names
    kwargs: dict = {"hosts": list(cfg.urls), "max_retries": cfg.max_retries, "retry_on_timeout": False,
                    "verify_certs": cfg.verify_certs}
    kwargs["timeout" if new else "request_timeout"] = cfg.timeout
    kwargs["pool_maxsize" if engine == "opensearch" else "maxsize" if new else "connections_per_node"] = POOL_SIZE
    kwargs.update(client_kwargs(cfg, engine, "http_auth" if new else "basic_auth"))
    if cfg.ca_certs:
        kwargs["ca_certs"] = cfg.ca_certs
    if cfg.client_cert:
        kwargs["client_cert"], kwargs["client_key"] = cfg.client_cert, cfg.client_key
    if not cfg.verify_certs:
        kwargs["ssl_show_warn"] = False
    client = getattr(lib, FAMILIES[engine].client_class)(**kwargs)
    client.splade_engine = engine  # lets helpers() pick the matching library
    return client


def _major(lib) -> int:
    return int(str(getattr(lib, "__versionstr__", "8")).split(".")[0])


def clause_budget(client) -> int:
    """``indices.query.bool.max_clause_count`` when the cluster lets us read it, else 1024."""
    try:
        resp = client.cluster.get_settings(include_defaults=True, flat_settings=True)
    except Exception as exc:  # a read-only user may not see cluster settings
        log.debug("cluster settings unreadable (%s); clause budget %d", exc, DEFAULT_CLAUSE_BUDGET)
        return DEFAULT_CLAUSE_BUDGET
    for section in ("transient", "persistent", "defaults"):
        value = resp.get(section, {}).get("indices.query.bool.max_clause_count")
        if value is not None:
            return int(value)
    return DEFAULT_CLAUSE_BUDGET

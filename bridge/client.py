"""The cluster edge: an opensearch-py client built from a ``ConnectionConfig``, and small reads."""
from __future__ import annotations

import logging
import warnings

from .config import ConnectionConfig

log = logging.getLogger(__name__)

DEFAULT_CLAUSE_BUDGET = 1024


def make_client(cfg: ConnectionConfig):
    from opensearchpy import OpenSearch

    kwargs: dict = {"hosts": list(cfg.urls), "timeout": cfg.timeout, "max_retries": cfg.max_retries,
                    "retry_on_timeout": False, "verify_certs": cfg.verify_certs}
    if cfg.username is not None:
        kwargs["http_auth"] = (cfg.username, cfg.password or "")
    if cfg.ca_certs:
        kwargs["ca_certs"] = cfg.ca_certs
    if cfg.client_cert:
        kwargs["client_cert"] = cfg.client_cert
        kwargs["client_key"] = cfg.client_key
    if not cfg.verify_certs:
        kwargs["ssl_show_warn"] = False
        warnings.warn("TLS certificate verification is disabled (--insecure)", stacklevel=2)
    return OpenSearch(**kwargs)


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

"""The cluster edge: an opensearch-py client built from a ``ConnectionConfig``, and small reads."""
from __future__ import annotations

import logging
import os
import warnings

from .config import ConnectionConfig

log = logging.getLogger(__name__)

DEFAULT_CLAUSE_BUDGET = 1024


def make_client(cfg: ConnectionConfig, engine: str | None = None):
    """A client of the right library for the cluster: ``engine`` (or ``BRIDGE_ENGINE``) overrides
    detection from ``GET /``."""
    from . import backends

    engine = engine or os.environ.get("BRIDGE_ENGINE") or backends.detect(cfg)[0]
    if engine not in backends.ENGINES:
        raise ValueError(f"engine must be one of {backends.ENGINES}, got {engine!r}")
    if not cfg.verify_certs:
        warnings.warn("TLS certificate verification is disabled (--insecure)", stacklevel=2)
    return backends.make_client(cfg, engine)


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

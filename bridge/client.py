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


def _version_tuple(number: str) -> tuple[int, int]:
    major, minor = (number.split("-")[0].split(".") + ["0"])[:2]
    return int(major), int(minor)


def capabilities(info: dict) -> dict:
    """What the server supports, from ``GET /`` (distribution + version), as data."""
    dist = info.get("version", {}).get("distribution", "elasticsearch")
    version = _version_tuple(info.get("version", {}).get("number", "0.0"))
    forms, fields = ["rank_feature"], ["rank_features"]
    if dist == "opensearch" and version >= (2, 14):
        forms.append("neural_sparse")
    if dist == "elasticsearch" and version >= (8, 11):
        fields.append("sparse_vector")
    if dist == "elasticsearch" and version >= (8, 15):
        forms.append("sparse_vector")
    return {"engine": dist, "version": ".".join(map(str, version)), "query_forms": forms,
            "vector_field_types": fields, "dotted_keys_rejected": dist == "elasticsearch",
            "point_in_time": dist == "opensearch" and version >= (2, 4)}

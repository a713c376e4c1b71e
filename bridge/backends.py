"""One registry for the engine families: detection from ``GET /``, capabilities as data, the client
library per engine (opensearch-py for OpenSearch, elasticsearch-py for Elasticsearch: the latter refuses
to talk to OpenSearch), and that library's helpers and exceptions.
"""
from __future__ import annotations

import importlib
import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from base64 import b64encode
from dataclasses import dataclass

from .config import ConnectionConfig, redact_url

ENGINES = ("opensearch", "elasticsearch")
POOL_SIZE = 16


class BackendError(RuntimeError):
    pass


@dataclass(frozen=True)
class Family:
    name: str
    module: str          # client library
    client_class: str
    install_hint: str


FAMILIES = {
    "opensearch": Family("opensearch", "opensearchpy", "OpenSearch", "pip install opensearch-py"),
    "elasticsearch": Family("elasticsearch", "elasticsearch", "Elasticsearch",
                            "pip install 'splade-bridge[elasticsearch]' (elasticsearch-py 7.17.x for a 7.17 "
                            "cluster, 8.x for an 8.x cluster)"),
}


def parse_version(number: str) -> tuple[int, int, int]:
    parts = (number.split("-")[0].split(".") + ["0", "0"])[:3]
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


def capabilities(engine: str, version: tuple[int, ...]) -> dict:
    """What a server supports, as data (see COMPATIBILITY.md)."""
    v = tuple(version[:2])
    os_, es = engine == "opensearch", engine == "elasticsearch"
    forms, fields = ["rank_feature"], ["rank_features"]
    if os_ and v >= (2, 14):
        forms.append("neural_sparse")
    if es and v >= (8, 11):
        fields.append("sparse_vector")
    if es and v >= (8, 15):
        forms.append("sparse_vector")
    return {"engine": engine, "version": ".".join(map(str, version)), "query_forms": forms,
            "vector_field_types": fields,
            # ES 8.x rejects dots in rank_features keys (elastic/elasticsearch#93756; not startable here);
            # 7.17 and OpenSearch accept them but cannot address them: the key codec is needed everywhere
            "dotted_keys_rejected": es and v >= (8, 0),
            "neural_sparse_max_weight": 64.0 if os_ else None,
            "point_in_time": "opensearch" if os_ and v >= (2, 4) else ("elasticsearch" if es and v >= (7, 10)
                                                                          else None),
            "clause_budget_setting": not (es and v >= (8, 0)),  # ES 8 sizes it from heap; the setting is ignored
            "sparse_vector_default_prune": es and v >= (8, 19)}


def detect(cfg: ConnectionConfig) -> tuple[str, tuple[int, int, int]]:
    """(engine, version) from ``GET /`` on the first reachable URL, honouring TLS and auth settings.

    Transient failures (refused, timed out, 5xx) are retried under ``cfg.retry``; the error names the
    attempts, never the credentials."""
    import time

    from .retry import retrying

    started, attempts = time.monotonic(), 0
    try:
        for attempt in retrying(cfg.retry, f"contacting {cfg.safe_urls}"):
            with attempt:
                attempts += 1
                return _detect_once(cfg)
    except urllib.error.HTTPError as exc:
        raise BackendError(f"{cfg.safe_urls} answered HTTP {exc.code} ({exc.reason})"
                           + (": check the username and password" if exc.code in (401, 403) else "")) from None
    except BackendError:
        raise
    except Exception as exc:
        reason = getattr(exc, "reason", None) or exc
        raise BackendError(f"cannot reach the cluster at {cfg.safe_urls} ({reason}; {attempts} attempt(s) over "
                           f"{time.monotonic() - started:.1f}s)") from None
    raise AssertionError("unreachable")


def _detect_once(cfg: ConnectionConfig) -> tuple[str, tuple[int, int, int]]:
    context = ssl.create_default_context(cafile=cfg.ca_certs) if cfg.verify_certs else ssl._create_unverified_context()
    if cfg.client_cert:
        context.load_cert_chain(cfg.client_cert, cfg.client_key)
    last: Exception | None = None
    for url in cfg.urls:
        parts = urllib.parse.urlsplit(url)
        user, password = (cfg.username, cfg.password) if cfg.username is not None else (parts.username, parts.password)
        headers = {"accept": "application/json"}
        if user is not None:
            token = b64encode(f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password or '')}".encode()).decode()
            headers["authorization"] = f"Basic {token}"
        bare = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
        try:
            req = urllib.request.Request(bare.rstrip("/") + "/", headers=headers)
            with urllib.request.urlopen(req, timeout=cfg.timeout,
                                        context=context if url.startswith("https") else None) as resp:
                info = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise
            last = exc
            continue
        except Exception as exc:  # try the next URL; report the last failure
            last = exc
            continue
        version = info.get("version", {})
        engine = version.get("distribution", "elasticsearch")
        if engine not in ENGINES:
            raise BackendError(f"{redact_url(url)} runs {engine!r}, which splade-bridge does not know")
        return engine, parse_version(version.get("number", "0.0.0"))
    raise last  # type: ignore[misc]


def client_library(engine: str):
    fam = FAMILIES[engine]
    try:
        return importlib.import_module(fam.module)
    except ImportError:
        raise BackendError(f"talking to {engine} needs {fam.module}: {fam.install_hint}") from None


def make_client(cfg: ConnectionConfig, engine: str):
    lib = client_library(engine)
    kwargs: dict = {"hosts": list(cfg.urls), "max_retries": cfg.max_retries, "retry_on_timeout": False,
                    "verify_certs": cfg.verify_certs}
    kwargs["timeout" if engine == "opensearch" or _major(lib) < 8 else "request_timeout"] = cfg.timeout
    # connections kept per node: enough for concurrent bulk senders and searches
    pool_arg = "pool_maxsize" if engine == "opensearch" else "maxsize" if _major(lib) < 8 else "connections_per_node"
    kwargs[pool_arg] = POOL_SIZE
    if cfg.username is not None:
        kwargs["http_auth" if engine == "opensearch" or _major(lib) < 8 else "basic_auth"] = \
            (cfg.username, cfg.password or "")
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


def engine_of(client) -> str:
    return getattr(client, "splade_engine", None) or (
        "elasticsearch" if type(client).__module__.startswith("elasticsearch") else "opensearch")


def helpers(client):
    """``streaming_bulk``/``scan`` from the client's own library."""
    return importlib.import_module(f"{FAMILIES[engine_of(client)].module}.helpers")


def status_of(exc: BaseException):
    """The HTTP status of a client library's error (``status_code`` in opensearch-py and
    elasticsearch-py 7, ``status`` in elasticsearch-py 8); None when there is none."""
    return getattr(exc, "status_code", None) or getattr(exc, "status", None)


def exceptions() -> tuple[tuple[type, ...], tuple[type, ...], tuple[type, ...]]:
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

"""Engine families as data: detection names, the client library per engine (opensearch-py for
OpenSearch, elasticsearch-py for Elasticsearch: the latter refuses to talk to OpenSearch), and what each
server version supports (see COMPATIBILITY.md)."""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from ..errors import ConfigError, MissingExtra

ENGINES = ("opensearch", "elasticsearch")


@dataclass(frozen=True)
class Family:
    name: str
    module: str          # client library
    client_class: str
    extra: str           # the splade-bridge extra that installs it


FAMILIES = {
    "opensearch": Family("opensearch", "opensearchpy", "OpenSearch", ""),
    "elasticsearch": Family("elasticsearch", "elasticsearch", "Elasticsearch", "elasticsearch"),
}


def parse_version(number: str) -> tuple[int, int, int]:
    parts = (number.split("-")[0].split(".") + ["0", "0"])[:3]
    return tuple(int(p) for p in parts)  # type: ignore[return-value]


NEURAL_PLUGIN = "opensearch-neural-search"


def capabilities(engine: str, version: tuple[int, ...], plugins: frozenset[str] | None = None) -> dict:
    """What a server supports, as data (see COMPATIBILITY.md). ``plugins``: the installed plugin names,
    when known; the ``neural_sparse`` query exists only with OpenSearch's neural-search plugin."""
    v = tuple(version[:2])
    os_, es = engine == "opensearch", engine == "elasticsearch"
    forms, fields = ["rank_feature"], ["rank_features"]
    neural = os_ and NEURAL_PLUGIN in (plugins or ())  # known to be installed
    if os_ and v >= (2, 14) and (plugins is None or NEURAL_PLUGIN in plugins):
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
            "sparse_vector_default_prune": es and v >= (8, 19),
            # neural-search's neural_sparse_two_phase_processor (2.15+); its hybrid query with pagination_depth
            # and the RRF score-ranker-processor (2.19+)
            "native_two_phase": neural and v >= (2, 15),
            "native_hybrid": neural and v >= (2, 19)}


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {ENGINES}, got {engine!r}")
    return engine


def client_library(engine: str):
    fam = FAMILIES[check_engine(engine)]
    try:
        return importlib.import_module(fam.module)
    except ImportError:
        if fam.extra:
            raise MissingExtra(fam.module, fam.extra) from None
        raise


def engine_of(client) -> str:
    return getattr(client, "splade_engine", None) or (
        "elasticsearch" if type(client).__module__.startswith("elasticsearch") else "opensearch")


def server_capabilities(client, info: dict | None = None) -> dict:
    """``capabilities`` of the server behind ``client`` (``GET /`` unless its answer ``info`` is given, and
    ``GET _cat/plugins``; when the plugin list is not readable, the version alone decides)."""
    try:
        plugins = frozenset(row["component"] for row in client.cat.plugins(format="json"))
    except Exception:  # a user without monitor rights: fall back to the version table
        plugins = None
    info = info or client.info()
    return capabilities(engine_of(client), parse_version(info["version"]["number"]), plugins)


def helpers(client):
    """``streaming_bulk``/``scan`` from the client's own library."""
    return importlib.import_module(f"{FAMILIES[engine_of(client)].module}.helpers")

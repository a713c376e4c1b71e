"""Backend registry and the request bodies of engines that cannot be started here (Elasticsearch 8.x)."""
import pytest

from bridge import mapping, query
from bridge.connection.engines import FAMILIES, capabilities, client_library, parse_version
from bridge.errors import ClusterUnreachable, MissingExtra
from bridge.stamp import ModelStamp
from bridge.config import ConnectionConfig
from bridge.searcher import SearchOptions, plan_query

STAMP = ModelStamp(model="m", revision="r", query_model="m", query_revision="r")


@pytest.mark.parametrize("engine,version,forms,fields", [
    ("opensearch", "1.3.20", ["rank_feature"], ["rank_features"]),
    ("opensearch", "2.13.0", ["rank_feature"], ["rank_features"]),
    ("opensearch", "2.19.6", ["rank_feature", "neural_sparse"], ["rank_features"]),
    ("opensearch", "3.8.0", ["rank_feature", "neural_sparse"], ["rank_features"]),
    ("elasticsearch", "7.17.29", ["rank_feature"], ["rank_features"]),
    ("elasticsearch", "8.11.0", ["rank_feature"], ["rank_features", "sparse_vector"]),
    ("elasticsearch", "8.15.0", ["rank_feature", "sparse_vector"], ["rank_features", "sparse_vector"]),
])
def test_capabilities_by_engine_and_version(engine, version, forms, fields):
    caps = capabilities(engine, parse_version(version))
    assert caps["query_forms"] == forms and caps["vector_field_types"] == fields
    assert caps["dotted_keys_rejected"] is (engine == "elasticsearch" and version >= "8")


def test_default_pruning_and_clause_budget_flags():
    assert capabilities("elasticsearch", (8, 19, 0))["sparse_vector_default_prune"] is True
    assert capabilities("elasticsearch", (8, 18, 0))["sparse_vector_default_prune"] is False
    assert capabilities("elasticsearch", (8, 15, 0))["clause_budget_setting"] is False
    assert capabilities("opensearch", (2, 19, 6))["neural_sparse_max_weight"] == 64.0
    # with the plugin list known, neural_sparse needs OpenSearch's neural-search plugin
    assert "neural_sparse" not in capabilities("opensearch", (2, 19, 6), frozenset({"opensearch-knn"}))["query_forms"]
    assert "neural_sparse" in capabilities("opensearch", (2, 19, 6), frozenset({"opensearch-neural-search"}))[
        "query_forms"]


def test_es8_sparse_vector_mapping_body():
    cfg = mapping.IndexConfig(field_type="sparse_vector", engine_prune=False)
    body = mapping.build(cfg, STAMP)
    assert body["mappings"]["properties"]["splade"] == {"type": "sparse_vector", "index_options": {"prune": False}}
    with pytest.raises(ValueError, match="sparse_vector"):
        mapping.IndexConfig(engine_prune=False)


def test_es8_sparse_vector_query_body_with_escaped_keys():
    body, used, factor = plan_query({"vitamin": 2.0, "u.s.": 0.5}, "splade", SearchOptions(form="sparse_vector",
                                                                                            size=5))
    assert body == {"size": 5, "query": {"sparse_vector": {"field": "splade",
                                                           "query_vector": {"vitamin": 2.0, "u%2Es%2E": 0.5}}}}
    assert used == {"vitamin": 2.0, "u.s.": 0.5} and factor == 1.0


def test_neural_sparse_weights_are_scaled_into_64():
    body, _, factor = plan_query({"a": 128.0, "b": 1.0}, "v", SearchOptions(form="neural_sparse"))
    assert body["query"]["neural_sparse"]["v"]["query_tokens"] == {"a": 64.0, "b": 0.5}
    assert factor == 0.5


def test_rank_feature_body_is_the_same_for_every_engine():
    # ES 7.17/8.x and OpenSearch take the same linear rank_feature clauses
    assert query.scoring_query("rank_feature", "v", {"x": 1.5}) == {
        "bool": {"should": [{"rank_feature": {"field": "v.x", "linear": {}, "boost": 1.5}}]}}


def test_missing_client_library_gives_an_install_hint(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake(name, *a, **k):
        if name == "elasticsearch":
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(importlib, "import_module", fake)
    with pytest.raises(MissingExtra, match=r"splade-bridge\[elasticsearch\]"):
        client_library("elasticsearch")
    assert FAMILIES["elasticsearch"].extra == "elasticsearch"


def test_detect_reports_unreachable_cluster():
    from bridge.connection.detect import detect

    with pytest.raises(ClusterUnreachable, match="cannot reach the cluster at http://127.0.0.1:9"):
        detect(ConnectionConfig(urls=("http://127.0.0.1:9",), timeout=2))

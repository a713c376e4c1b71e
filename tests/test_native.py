"""The request bodies that hand two-phase search and hybrid fusion to OpenSearch's neural-search plugin (pure),
and the rule for when they are used. Live: tests/test_parity_scifact.py and tests/test_neural_node.py."""
import pytest

from bridge import native, query
from bridge.connection.engines import capabilities
from bridge.errors import QueryError

SCORING = query.neural_sparse_query("splade", {"vitamin": 2.0, "d": 1.0, "bone": 0.3})
FILTER = {"term": {"year": 2020}}


def test_two_phase_body_carries_every_token_and_the_processor_with_our_window():
    body = native.two_phase_body(SCORING, size=10, filters=(), ratio=0.4, window=100)
    assert body["query"] == SCORING  # all tokens: the processor splits them
    (processor,) = body["search_pipeline"]["request_processors"]
    params = processor["neural_sparse_two_phase_processor"]["two_phase_parameter"]
    assert params["prune_ratio"] == 0.4
    assert params["expansion_rate"] * 10 == 100  # window = size x expansion_rate
    assert params["max_window_size"] == 100
    small = native.two_phase_body(SCORING, size=20, filters=(), ratio=0.4, window=5)
    params = small["search_pipeline"]["request_processors"][0]["neural_sparse_two_phase_processor"]
    assert params["two_phase_parameter"]["expansion_rate"] == 1.0  # never a window below the page
    assert params["two_phase_parameter"]["max_window_size"] == 50  # the processor's floor


def test_two_phase_filters_sit_beside_the_query_where_the_processor_finds_it():
    """The processor looks at the top level and bool.should only: a bool.must would hide the query from it."""
    body = native.two_phase_body(SCORING, size=10, filters=(FILTER,), ratio=0.4, window=100)
    assert body["query"] == {"bool": {"should": [SCORING], "minimum_should_match": 1, "filter": [FILTER]}}


@pytest.mark.parametrize("method,processor", [("rrf", "score-ranker-processor"),
                                              ("norm", "normalization-processor")])
def test_hybrid_body_is_one_request_fused_by_the_cluster(method, processor):
    lexical = {"match": {"text": {"query": "vitamin d"}}}
    body = native.hybrid_body(lexical, SCORING, size=10, depth=100, method=method, rrf_k=60, filters=(FILTER,))
    hybrid = body["query"]["hybrid"]
    assert hybrid["pagination_depth"] == 100 and body["size"] == 10
    assert hybrid["queries"] == [{"bool": {"must": [q], "filter": [FILTER]}} for q in (lexical, SCORING)]
    (fusion,) = body["search_pipeline"]["phase_results_processors"]
    assert list(fusion) == [processor]
    if method == "rrf":
        assert fusion[processor]["combination"] == {"technique": "rrf", "rank_constant": 60}
    else:
        assert fusion[processor]["normalization"] == {"technique": "min_max"}
    deep = native.hybrid_body(lexical, SCORING, size=200, depth=100, method=method, rrf_k=60)
    assert deep["query"]["hybrid"]["pagination_depth"] == 200
    assert deep["query"]["hybrid"]["queries"] == [lexical, SCORING]


def test_auto_uses_the_plugin_where_it_is_always_requires_it_never_avoids_it():
    assert native.use_native("auto", True, "") is True
    assert native.use_native("auto", False, "no plugin") is False
    assert native.use_native("never", True, "") is False
    assert native.use_native("always", True, "") is True
    with pytest.raises(QueryError, match="native search asked for, but the cluster has no neural-search"):
        native.use_native("always", False, "the cluster has no neural-search plugin")
    with pytest.raises(QueryError, match="native must be one of"):
        native.use_native("sometimes", True, "")


def test_native_paths_need_the_plugin_to_be_seen_installed():
    plugin = frozenset({"opensearch-neural-search", "opensearch-knn"})
    assert capabilities("opensearch", (2, 19, 1), plugin)["native_hybrid"] is True
    assert capabilities("opensearch", (2, 19, 1), plugin)["native_two_phase"] is True
    assert capabilities("opensearch", (2, 17, 0), plugin)["native_hybrid"] is False  # no pagination_depth, RRF
    assert capabilities("opensearch", (2, 17, 0), plugin)["native_two_phase"] is True
    for plugins in (None, frozenset()):  # unknown (no monitor rights) or absent: standard DSL
        caps = capabilities("opensearch", (2, 19, 1), plugins)
        assert not caps["native_hybrid"] and not caps["native_two_phase"]
    assert not capabilities("elasticsearch", (7, 17, 29), plugin)["native_hybrid"]

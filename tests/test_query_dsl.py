import pytest

from bridge import query


def test_rank_feature_body_is_linear_bool_should():
    assert query.scoring_query("rank_feature", "splade", {"hello": 1.5, "a%2Eb": 3.0}) == {
        "bool": {"should": [
            {"rank_feature": {"field": "splade.hello", "linear": {}, "boost": 1.5}},
            {"rank_feature": {"field": "splade.a%2Eb", "linear": {}, "boost": 3.0}},
        ]}}


def test_neural_sparse_and_sparse_vector_bodies():
    assert query.scoring_query("neural_sparse", "v", {"x": 2.0}) == {
        "neural_sparse": {"v": {"query_tokens": {"x": 2.0}}}}
    assert query.scoring_query("sparse_vector", "v", {"x": 2.0}) == {
        "sparse_vector": {"field": "v", "query_vector": {"x": 2.0}}}


def test_search_body_with_filters_size_and_source():
    scoring = query.scoring_query("rank_feature", "v", {"x": 1.0})
    body = query.search_body(scoring, size=3, filters=[{"term": {"lang": "en"}}], source=["title"])
    assert body == {"size": 3, "_source": ["title"],
                    "query": {"bool": {"must": [scoring], "filter": [{"term": {"lang": "en"}}]}}}
    assert query.search_body(scoring) == {"size": 10, "query": scoring}


def test_empty_and_unknown_forms_raise():
    with pytest.raises(ValueError, match="no tokens"):
        query.scoring_query("rank_feature", "v", {})
    with pytest.raises(ValueError, match="form"):
        query.scoring_query("script", "v", {"x": 1.0})


def test_injection_looking_text_stays_data():
    text = '"} OR *:* {"match_all": {}}'
    body = query.match_query(text, ["title", "text"])
    assert body["query"]["multi_match"]["query"] == text
    key = 'x"}]}, {"match_all": {}'
    assert query.scoring_query("rank_feature", "v", {key: 1.0})["bool"]["should"][0]["rank_feature"]["field"] == \
        "v." + key


def test_two_phase_split_keeps_every_token_once_and_the_heavy_ones_first():
    weights = {"a": 2.0, "b": 1.0, "c": 0.79, "d": 0.8, "e": 0.1}
    first, rest = query.split_tokens(weights, ratio=0.4)
    assert first == {"a": 2.0, "b": 1.0, "d": 0.8} and rest == {"c": 0.79, "e": 0.1}
    assert query.split_tokens(weights, ratio=0.4, max_first=2) == ({"a": 2.0, "b": 1.0},
                                                                   {"d": 0.8, "c": 0.79, "e": 0.1})
    assert query.split_tokens({"x": 1.0}, ratio=1.0) == ({"x": 1.0}, {})
    assert query.split_tokens({}, ratio=0.5) == ({}, {})


def test_two_phase_body_rescores_the_window_with_the_rest_and_filters_the_first_phase():
    from bridge.searcher import SearchOptions, TwoPhase, plan_query

    tokens = {"garlic": 2.0, "blood": 1.5, "pressure": 0.5, "heart": 0.3}
    opts = SearchOptions(size=20, mode="two-phase", two_phase=TwoPhase(ratio=0.5, window=10),
                         filters=({"term": {"lang": "en"}},))
    body, used, factor = plan_query(tokens, "v", opts)
    assert used == tokens and factor == 1.0
    must = body["query"]["bool"]["must"][0]["bool"]["should"]
    assert {c["rank_feature"]["field"] for c in must} == {"v.garlic", "v.blood"}
    assert body["query"]["bool"]["filter"] == [{"term": {"lang": "en"}}]
    rescore = body["rescore"]
    assert rescore["window_size"] == 20  # never smaller than the page
    q = rescore["query"]
    assert (q["query_weight"], q["rescore_query_weight"], q["score_mode"]) == (1.0, 1.0, "total")
    assert {c["rank_feature"]["field"]: c["rank_feature"]["boost"] for c in q["rescore_query"]["bool"]["should"]} \
        == {"v.pressure": 0.5, "v.heart": 0.3}
    assert "rescore" not in plan_query(tokens, "v", SearchOptions(size=20))[0]  # splade mode: one phase
    with pytest.raises(ValueError, match="mode"):
        SearchOptions(mode="fast")
    with pytest.raises(ValueError, match="ratio"):
        TwoPhase(ratio=0)

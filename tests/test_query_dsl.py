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

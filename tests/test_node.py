"""Facts about the engine, proven against the real node (see shared notes/engine-constraints.md)."""
import pytest
from opensearchpy.exceptions import RequestError

from bridge.connection.client import clause_budget

pytestmark = pytest.mark.integration


def _linear(field, boost):
    return {"rank_feature": {"field": field, "linear": {}, "boost": boost}}


def _index_one(client, name, features):
    client.indices.create(index=name, body={"mappings": {"properties": {"v": {"type": "rank_features"}}}})
    client.index(index=name, id="1", body={"v": features}, refresh=True)


def _score(client, name, query):
    hits = client.search(index=name, body={"query": query})["hits"]["hits"]
    return hits[0]["_score"] if hits else None


def test_mapper_extras_loaded(node_url):
    import json
    import urllib.request

    with urllib.request.urlopen(f"{node_url}/_nodes/plugins?filter_path=nodes.*.modules.name") as r:
        nodes = json.loads(r.read())["nodes"]
    assert any(m["name"] == "mapper-extras" for n in nodes.values() for m in n["modules"])


def test_linear_rank_feature_scores_a_dot_product(client, index_name):
    _index_one(client, index_name, {"hello": 2.0, "world": 0.5})
    score = _score(client, index_name, {"bool": {"should": [_linear("v.hello", 1.5), _linear("v.world", 3.0)]}})
    assert score == pytest.approx(4.5, rel=1e-3)


def test_default_rank_feature_is_not_linear(client, index_name):
    _index_one(client, index_name, {"hello": 2.0})
    saturation = _score(client, index_name, {"rank_feature": {"field": "v.hello"}})
    assert saturation != pytest.approx(2.0, rel=1e-2)


def test_values_keep_nine_significant_bits(client, index_name):
    _index_one(client, index_name, {"a": 1.2345678})
    score = _score(client, index_name, _linear("v.a", 1.0))
    assert score == pytest.approx(1.2345678, rel=2 ** -8)
    assert score != pytest.approx(1.2345678, rel=1e-6)


def test_zero_and_negative_values_are_rejected(client, index_name):
    client.indices.create(index=index_name, body={"mappings": {"properties": {"v": {"type": "rank_features"}}}})
    for bad in (0.0, -1.0):
        with pytest.raises(RequestError):
            client.index(index=index_name, id="x", body={"v": {"a": bad}})


def test_dotted_keys_index_but_cannot_be_addressed(client, index_name):
    """Why the key codec exists: 'v.a.b' is read as field 'v.a', feature 'b'."""
    _index_one(client, index_name, {"a.b": 1.0, "a%2Eb": 1.0})
    assert _score(client, index_name, _linear("v.a.b", 1.0)) is None
    assert _score(client, index_name, _linear("v.a%2Eb", 1.0)) == pytest.approx(1.0)


def test_rank_feature_boost_above_64_is_accepted(client, index_name):
    _index_one(client, index_name, {"hello": 2.0})
    assert _score(client, index_name, _linear("v.hello", 100.0)) == pytest.approx(200.0, rel=1e-3)


def test_clause_budget_is_read_from_the_cluster(client):
    assert clause_budget(client) == 1024

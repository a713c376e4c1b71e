"""The filter language (bridge.filters): what passes, translated to DSL, and what is refused, where."""
import pytest

from bridge.errors import QueryError
from bridge.filters import MAX_CLAUSES, MAX_DEPTH, check_filters
from bridge.searcher import SearchOptions


def test_the_language_passes_and_comes_back_as_fresh_dsl():
    given = [{"term": {"lang": "en"}}, {"terms": {"year": [2019, 2020]}}, {"range": {"year": {"gte": 2000, "lt": 2030}}},
             {"exists": {"field": "title"}}, {"ids": {"values": ["a", "b"]}},
             {"bool": {"filter": [{"term": {"x.y": True}}], "must_not": [{"term": {"draft": 1.5}}]}}]
    out = check_filters(given)
    assert list(out) == given
    out[0]["term"]["lang"] = "changed"
    assert given[0]["term"]["lang"] == "en"  # nothing shared with the caller's objects


@pytest.mark.parametrize("bad,where", [
    ({"script": {"script": "1"}}, "filters[0]: 'script' is not an allowed filter"),
    ({"terms": {"_id": {"index": "other", "id": "1", "path": "p"}}}, "filters[0]"),
    ({"terms": {"tag": {"index": "other", "id": "1", "path": "p"}}}, "terms lookups are not allowed"),
    ({"bool": {"filter": [{"query_string": {"query": "*"}}]}}, "filters[0].bool.filter[0]: 'query_string'"),
    ({"term": {"a": {"value": 1}}}, "filters[0].term.a"),
    ({"term": {"a": 1, "b": 2}}, "one field"),
    ({"term": {"a": float("nan")}}, "finite number"),
    ({"range": {"a": {"gte": 1, "boost": 2}}}, "bounds must be some of"),
    ({"exists": {"field": "_source"}}, "not a plain field name"),
    ({"ids": {"values": [1]}}, "ids are strings"),
    ({"bool": {"should": {"term": {"a": 1}}}}, "a list of filters"),
    ({"bool": {"minimum_should_match": 1}}, "expected some of"),
    ([{"term": {"a": 1}}], "exactly one key"),
    ({"term": {"a": 1}, "terms": {"b": [1]}}, "exactly one key"),
])
def test_anything_else_is_refused_naming_where(bad, where):
    with pytest.raises(QueryError, match=where.replace("[", r"\[").replace("]", r"\]").replace("*", r"\*")):
        check_filters([bad])


def test_depth_and_count_are_bounded():
    nested = {"term": {"a": 1}}
    for _ in range(MAX_DEPTH - 1):
        nested = {"bool": {"filter": [nested]}}
    check_filters([nested])
    with pytest.raises(QueryError, match="nest at most"):
        check_filters([{"bool": {"filter": [nested]}}])
    check_filters([{"term": {"a": i}} for i in range(MAX_CLAUSES)])
    with pytest.raises(QueryError, match=f"more than {MAX_CLAUSES}"):
        check_filters([{"term": {"a": i}} for i in range(MAX_CLAUSES + 1)])


def test_search_options_apply_the_language_everywhere():
    # the CLI (--filter), the Python API and the service all build SearchOptions
    assert SearchOptions(filters=({"term": {"lang": "en"}},)).filters == ({"term": {"lang": "en"}},)
    with pytest.raises(QueryError, match="script"):
        SearchOptions(filters=({"script": {"script": "1"}},))

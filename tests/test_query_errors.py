"""The bad-input catalogue, query side, and injection-looking queries: against the real node."""
from __future__ import annotations

import json
import uuid

import pytest
from bridge.stamp import IndexStamp

from tests.conftest import SAMPLE, cli, load_jsonl

pytestmark = [pytest.mark.integration, pytest.mark.model]

INJECTIONS = ['"} OR *:*', "title:foo AND * OR _exists_:splade", '{"match_all": {}}', "*:* -x:[* TO *] || 1=1"]
AWKWARD = {"_id": "awkward", "title": "Notation", "text": "e.g. C# and F# code, [unused0] markers, pi is 3.14"}


@pytest.fixture(scope="module")
def small_index(client, encoder):
    from bridge import idf, indexing, mapping
    from bridge.config import PruneConfig, QuantConfig

    name = f"q-{uuid.uuid4().hex[:8]}"
    body = mapping.build(mapping.IndexConfig(prune=PruneConfig(), quant=QuantConfig()), encoder.stamp)
    client.indices.create(index=name, body=body)
    meta = IndexStamp.from_meta(body["mappings"]["_meta"][mapping.META_KEY])
    summary = indexing.run(client, encoder, name, iter([*load_jsonl(SAMPLE, 40), AWKWARD]), meta)
    assert summary.indexed == 41
    idf.build(client, name, "splade")
    yield name
    client.indices.delete(index=f"{name}*", ignore_unavailable=True)


def _exact(client, index: str, tokens: dict[str, float]) -> dict[str, float]:
    """Documents with a positive SPLADE dot product with ``tokens``, scored from the stored vectors
    (the parity reference of the eval job, not the cluster)."""
    from bridge.evaluation import StoredVectors

    return StoredVectors(client, index, "splade").top(tokens, k=1000)


def _one_line_error(proc, *needles: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), proc.stderr
    for n in needles:
        assert n in last, last
    return last


@pytest.mark.parametrize("text", ["", "   \t "], ids=["empty", "whitespace"])
def test_empty_query_is_a_clear_error(node_url, client, encoder, small_index, text):
    from bridge.errors import QueryError
    from bridge.searcher import Searcher

    with pytest.raises(QueryError, match="empty"):
        Searcher(client, encoder, small_index).search(text)
    _one_line_error(cli("--url", node_url, "search", small_index, text), "the query is empty")


def test_punctuation_only_query_is_searched_as_text(client, encoder, small_index):
    from bridge.searcher import SearchOptions, Searcher

    s = Searcher(client, encoder, small_index)
    tokens = s.expand("?!.,;")
    hits = s.search("?!.,;", SearchOptions(size=100))
    exact = _exact(client, small_index, tokens)
    assert {h.id for h in hits} == set(exact)
    for h in hits:
        assert h.score == pytest.approx(exact[h.id], rel=5e-3)


def test_query_that_expands_to_nothing_is_a_clear_error(node_url, client, encoder, small_index):
    from bridge.errors import QueryError
    from bridge.searcher import Searcher

    with pytest.raises(QueryError, match="expands to no terms"):
        Searcher(client, encoder, small_index, inference_free=True).search("🦄🦄 🦄")
    _one_line_error(cli("--url", node_url, "search", small_index, "🦄🦄 🦄", "--inference-free"),
                    "expands to no terms")


def test_query_over_the_clause_budget_is_cut_to_fit(client, encoder, small_index):
    """1,500 query terms: the cluster refuses them as they are; ours keeps the 1,024 largest."""
    from bridge.connection.failures import client_exceptions as exceptions
    from bridge.query import scoring_query, search_body
    from bridge.searcher import SearchOptions, Searcher

    vocab = [t for t in encoder.vocab if t.isalpha()][:1500]
    tokens = {t: 1.0 + i / 1500 for i, t in enumerate(vocab)}
    s = Searcher(client, encoder, small_index)
    assert s.budget == 1024
    body, used, _ = s.build_tokens(tokens, SearchOptions(size=5))
    assert len(body["query"]["bool"]["should"]) == len(used) == 1024
    assert min(used.values()) > 1.0 + 475 / 1500 - 1e-9  # the largest weights were kept
    assert isinstance(s.search_tokens(tokens, SearchOptions(size=5)), list)
    uncut = search_body(scoring_query("rank_feature", "splade", tokens), size=5)
    with pytest.raises(exceptions()[2]):
        client.search(index=small_index, body=uncut)


def test_missing_index_is_a_clear_error(node_url, tmp_path):
    _one_line_error(cli("--url", node_url, "search", "no-such-index-xyz", "garlic"), "no such index")
    src = tmp_path / "one.jsonl"
    src.write_text(json.dumps({"_id": "1", "text": "garlic"}) + "\n")
    _one_line_error(cli("--url", node_url, "ingest", "no-such-index-xyz", str(src), "--no-create"),
                    "does not exist")


def test_index_not_made_by_splade_bridge_is_refused(node_url, client, small_index):
    name = f"{small_index}-plain"
    client.indices.create(index=name, body={"mappings": {"properties": {"splade": {"type": "rank_features"}}}})
    _one_line_error(cli("--url", node_url, "search", name, "garlic"), "not created by splade-bridge")


def test_vector_field_that_is_not_rank_features_is_refused(node_url, client, small_index, tmp_path):
    stamp = client.indices.get_mapping(index=small_index)[small_index]["mappings"]["_meta"]
    name = f"{small_index}-text"
    client.indices.create(index=name, body={"mappings": {"_meta": stamp, "properties": {"splade": {"type": "text"}}}})
    _one_line_error(cli("--url", node_url, "search", name, "garlic"), "is 'text', not rank_features")
    src = tmp_path / "one.jsonl"
    src.write_text(json.dumps({"_id": "1", "text": "garlic"}) + "\n")
    _one_line_error(cli("--url", node_url, "ingest", name, str(src)), "is 'text', not rank_features")


def test_index_stamped_with_another_model_is_refused(node_url, client, small_index, tmp_path):
    meta = client.indices.get_mapping(index=small_index)[small_index]["mappings"]["_meta"]
    other = json.loads(json.dumps(meta))
    other["splade_bridge"]["model"]["revision"] = "0123456789abcdef"
    name = f"{small_index}-other"
    client.indices.create(index=name, body={"mappings": {"_meta": other,
                                                         "properties": {"splade": {"type": "rank_features"}}}})
    _one_line_error(cli("--url", node_url, "search", name, "garlic", "--model", "splade-tiny"), "built with model")
    src = tmp_path / "one.jsonl"
    src.write_text(json.dumps({"_id": "1", "text": "garlic"}) + "\n")
    _one_line_error(cli("--url", node_url, "ingest", name, str(src), "--model", "splade-tiny"), "built with model")


def test_query_with_dots_hashes_and_unused_tokens(client, encoder, small_index):
    from bridge.searcher import Searcher

    s = Searcher(client, encoder, small_index)
    text = "C# e.g. [unused0] 3.14"
    body, used, _ = s.build(text)
    fields = [c["rank_feature"]["field"] for c in body["query"]["bool"]["should"]]
    assert all(f.startswith("splade.") and "." not in f[len("splade."):] for f in fields)
    assert any(t in used for t in (".", "#")), used
    assert s.search(text)[0].id == "awkward"


@pytest.mark.parametrize("text", INJECTIONS)
def test_injection_looking_queries_are_only_text(client, encoder, small_index, text):
    """The text is model input only: the body holds rank_feature clauses on our field and nothing the
    text could have smuggled in, and the hits are exactly the documents with a positive SPLADE score."""
    from bridge.searcher import SearchOptions, Searcher

    s = Searcher(client, encoder, small_index)
    body, used, _ = s.build(text, SearchOptions(size=100))
    assert set(body) <= {"query", "size", "_source"}
    assert set(body["query"]) == {"bool"} and set(body["query"]["bool"]) == {"should"}
    for clause in body["query"]["bool"]["should"]:
        assert set(clause) == {"rank_feature"}
        assert set(clause["rank_feature"]) == {"field", "linear", "boost"}
        assert clause["rank_feature"]["field"].startswith("splade.")
    assert text not in json.dumps(body) and "match_all" not in json.dumps(body)
    hits = s.search(text, SearchOptions(size=100))
    exact = _exact(client, small_index, used)
    assert {h.id for h in hits} == set(exact)
    for h in hits:
        assert h.score == pytest.approx(exact[h.id], rel=5e-3)


def test_bm25_side_uses_match_not_query_string():
    """The BM25 baseline passes the text to multi_match/match (analysed as text, no query syntax)."""
    from bridge.query import match_query

    for text in INJECTIONS:
        both = match_query(text, ("title", "text"))["query"]
        assert both == {"multi_match": {"query": text, "fields": ["title", "text"], "type": "best_fields",
                                        "tie_breaker": 0.5}}
        assert match_query(text, ("text",))["query"] == {"match": {"text": {"query": text}}}

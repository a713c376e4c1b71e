"""``splade-bridge serve`` started on a free port, every endpoint exercised over HTTP."""
import asyncio
import json
import time

import httpx
import pytest

from bridge import indexing, mapping
from bridge.serve.batcher import BatchConfig, MicroBatcher
from bridge.stamp import IndexStamp
from tests.conftest import SAMPLE, load_jsonl
from tests.serving import running_service

pytestmark = [pytest.mark.integration, pytest.mark.model]


@pytest.fixture(scope="module")
def served_index(client, encoder):
    name = "test-serve-sample"
    client.indices.delete(index=name, ignore_unavailable=True)
    body = mapping.build(mapping.IndexConfig(), encoder.stamp)
    client.indices.create(index=name, body=body)
    meta = IndexStamp.from_meta(body["mappings"]["_meta"][mapping.META_KEY])
    indexing.run(client, encoder, name, iter(load_jsonl(SAMPLE, 60)), meta)
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture(scope="module")
def service(node_url, served_index):
    with running_service("--url", node_url, "serve", "--index", served_index, "--allow-index", "test-serve-*",
                         "--max-body-bytes", "20000") as (base, _):
        yield base


def test_expand_equals_the_library(service, encoder):
    text = "how many tablespoons of garlic powder are in an ounce"
    r = httpx.post(service + "/expand", json={"text": text})
    assert r.status_code == 200
    want = encoder.tokens(encoder.encode_query(text))
    got = r.json()["tokens"]
    assert set(got) == set(want)
    assert all(abs(got[t] - want[t]) < 1e-5 for t in want)
    top2 = httpx.post(service + "/expand", json={"text": text, "query_top_k": 2}).json()["tokens"]
    assert httpx.post(service + "/expand", json={"text": text, "top_k": 2}).json()["tokens"] == top2  # the old name
    every = httpx.post(service + "/expand", json={"text": text, "query_top_k": 0}).json()["tokens"]
    assert len(every) > len(top2) and every == httpx.post(service + "/expand", json={"text": text}).json()["tokens"]
    assert set(top2) == {"ounce", "powder"}


def test_query_returns_the_dsl_for_the_index(service, served_index):
    r = httpx.post(service + "/query", json={"text": "vitamin D", "size": 3, "filters": [{"term": {"x": 1}}]})
    assert r.status_code == 200
    body = r.json()["query"]
    assert body["size"] == 3
    should = body["query"]["bool"]["must"][0]["bool"]["should"]
    assert should and all(c["rank_feature"]["linear"] == {} for c in should)
    assert body["query"]["bool"]["filter"] == [{"term": {"x": 1}}]
    # the test node has no neural-search plugin: the form is refused for its indices, naming what works
    ns = httpx.post(service + "/query", json={"text": "vitamin D", "form": "neural_sparse"})
    assert ns.status_code == 400 and "'neural_sparse' is not supported" in ns.json()["error"]
    text = "vitamin D and bone density"
    one = httpx.post(service + "/query", json={"text": text}).json()["query"]["query"]["bool"]["should"]
    two = httpx.post(service + "/query", json={"text": text, "mode": "two-phase"}).json()
    first = two["query"]["query"]["bool"]["should"]
    rest = two["query"]["rescore"]["query"]["rescore_query"]["bool"]["should"]
    assert len(first) + len(rest) == len(one) and first and rest  # the same tokens, split in two phases
    hits = httpx.post(service + "/search", json={"text": "vitamin D and bone density", "mode": "two-phase"})
    assert hits.status_code == 200 and hits.json()["hits"]
    hybrid = httpx.post(service + "/query", json={"text": text, "mode": "hybrid"}).json()
    assert hybrid["fusion"]["method"] == "norm" and "multi_match" in json.dumps(hybrid["bm25_query"])
    fused = httpx.post(service + "/search", json={"text": text, "mode": "hybrid", "size": 5}).json()
    assert fused["fusion"] == "client-side norm" and len(fused["hits"]) == 5


def test_search_returns_hits_with_explanations(service, served_index, client, encoder):
    from bridge.searcher import Searcher, SearchOptions

    r = httpx.post(service + "/search", json={"text": "cancer risk", "size": 5, "explain": True})
    assert r.status_code == 200
    hits = r.json()["hits"]
    want = Searcher(client, encoder, served_index).search("cancer risk", SearchOptions(size=5))
    assert [h["_id"] for h in hits] == [h.id for h in want]
    assert all(h["explain"] for h in hits)


def test_every_mode_searches_and_explains(service, served_index, client, encoder):
    """bm25 is the index's text fields alone (a plain multi_match); an explained answer carries the query's tokens
    and each hit's SPLADE score, of which the contributions are the parts."""
    from bridge.searcher import Searcher, SearchOptions

    text, searcher = "cancer risk", Searcher(client, encoder, served_index)
    plain = client.search(index=served_index, body={"size": 5, "query": {"multi_match": {
        "query": text, "fields": ["title", "text"], "type": "best_fields", "tie_breaker": 0.5}}})["hits"]["hits"]
    for mode in ("bm25", "splade", "two-phase", "hybrid"):
        answer = httpx.post(service + "/search", json={"text": text, "size": 5, "mode": mode, "explain": True,
                                                       "explain_top": 1000}).json()
        want = plain if mode == "bm25" else [{"_id": h.id} for h in searcher.search(text, SearchOptions(size=5, mode=mode))]
        assert [h["_id"] for h in answer["hits"]] == [h["_id"] for h in want], mode
        assert answer["tokens"] == pytest.approx(searcher.expand(text, SearchOptions().query_prune))
        assert answer["text_fields"] == ["title", "text"]
        for hit in answer["hits"]:
            parts = hit["explain"][2:] if mode == "hybrid" else hit["explain"]
            assert sum(p["contribution"] for p in parts) == pytest.approx(hit.get("splade_score", 0.0), rel=1e-6)
            if mode in ("splade", "two-phase"):
                assert hit["splade_score"] == pytest.approx(hit["_score"], rel=1e-2)
    assert [h["_score"] for h in httpx.post(service + "/search", json={"text": text, "size": 5, "mode": "bm25"}).json()
            ["hits"]] == pytest.approx([h["_score"] for h in plain])
    r = httpx.post(service + "/query", json={"text": text, "mode": "bm25", "size": 3})
    assert r.status_code == 200 and r.json()["query"]["query"]["multi_match"]["query"] == text


def test_the_compare_page_is_opt_in(service):
    assert httpx.get(service + "/ui").status_code == 404
    assert httpx.get(service + "/indices").json() == {"indices": ["test-serve-sample"], "patterns": ["test-serve-*"],
                                                      "default": "test-serve-sample"}


@pytest.mark.parametrize("payload,status,needle", [
    ({}, 422, "text"),
    ({"text": ""}, 422, "text"),
    ({"text": "x", "size": -1}, 422, "size"),
    ({"text": "x", "form": "script"}, 422, "form"),
    ({"text": "x", "index": "test-serve-missing"}, 404, "not found"),
    ({"text": "x", "index": "no-such-index"}, 403, "not served here"),
    ({"text": "x", "size": 20000}, 422, "size"),
    ({"text": "x" * 9000}, 422, "text"),
])
def test_bad_requests_get_clear_json_errors(service, payload, status, needle):
    r = httpx.post(service + "/search", json=payload)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]
    assert "Traceback" not in r.text


def test_oversized_and_malformed_bodies(service):
    r = httpx.post(service + "/expand", content=b'{"text": "' + b"a" * 30000 + b'"}',
                   headers={"content-type": "application/json"})
    assert r.status_code == 413 and "error" in r.json()
    r = httpx.post(service + "/expand", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "error" in r.json()


def test_health_metrics_and_openapi(service):
    health = httpx.get(service + "/healthz").json()
    assert health["status"] == "ok" and health["model"] == "splade-tiny" and health["cluster"] is True
    httpx.post(service + "/expand", json={"text": "repeat me"})
    httpx.post(service + "/expand", json={"text": "repeat me"})
    metrics = httpx.get(service + "/metrics").text
    assert 'splade_requests_total{endpoint="/expand",status="200"}' in metrics
    assert "splade_request_seconds_bucket" in metrics and "splade_batch_size_count" in metrics
    assert 'splade_expand_cache_total{result="hit"}' in metrics
    paths = httpx.get(service + "/openapi.json").json()["paths"]
    assert {"/expand", "/query", "/search", "/healthz", "/metrics"} <= set(paths)


def test_concurrent_requests_share_forward_passes():
    calls = []

    def encode(texts):
        calls.append(list(texts))
        time.sleep(0.01)
        return [f"vec:{t}" for t in texts]

    async def main():
        b = MicroBatcher(encode, BatchConfig(max_batch=8, max_wait_ms=20, cache_size=0))
        await b.start()
        results = await asyncio.gather(*(b.expand(f"q{i % 10}") for i in range(20)))
        await b.stop()
        return results

    results = asyncio.run(main())
    assert results == [f"vec:q{i % 10}" for i in range(20)]
    assert len(calls) < 20 and max(len(c) for c in calls) <= 8


def test_batcher_failure_reaches_every_waiter_and_loop_survives():
    state = {"fail": True}

    def encode(texts):
        if state["fail"]:
            raise RuntimeError("boom")
        return list(texts)

    async def main():
        b = MicroBatcher(encode, BatchConfig(max_wait_ms=5, cache_size=0))
        await b.start()
        first = await asyncio.gather(b.expand("a"), b.expand("b"), return_exceptions=True)
        state["fail"] = False
        second = await b.expand("c")
        await b.stop()
        return first, second

    first, second = asyncio.run(main())
    assert all(isinstance(e, RuntimeError) for e in first) and second == "c"


def test_access_log_is_one_json_object_per_request_and_names_no_secret(tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("t0ken-that-must-not-be-logged\n")
    auth = {"authorization": "Bearer t0ken-that-must-not-be-logged"}
    with running_service("--log-format", "json", "serve", "--auth-token-file", str(tokens),
                         "--max-body-bytes", "2000") as (base, proc):
        ok = httpx.post(base + "/expand?secret=q", json={"text": "garlic"}, headers={**auth, "x-request-id": "req-7"})
        unauthorized = httpx.post(base + "/expand", json={"text": "garlic"})
        too_big = httpx.post(base + "/expand", content=b'{"text": "' + b"a" * 3000 + b'"}',
                             headers={**auth, "content-type": "application/json"})
        time.sleep(0.5)
        from tests.serving import stderr_of

        lines = stderr_of(proc).splitlines()
    assert ok.status_code == 200 and ok.headers["x-request-id"] == "req-7"
    assert unauthorized.status_code == 401 and len(unauthorized.headers["x-request-id"]) == 32
    assert too_big.status_code == 413
    records = [json.loads(line) for line in lines if line.strip()]  # every line is one JSON object
    assert any(r["message"].startswith("serving splade-tiny on") for r in records)
    access = [r["http"] for r in records if r["logger"] == "bridge.serve.access"]
    by_id = {a["request_id"]: a for a in access}
    assert by_id["req-7"]["status"] == 200 and by_id["req-7"]["path"] == "/expand"
    assert by_id["req-7"]["method"] == "POST" and by_id["req-7"]["duration_ms"] > 0
    assert sorted(a["status"] for a in access if a["path"] == "/expand") == [200, 401, 413]
    text = "\n".join(lines)
    assert "t0ken-that-must-not-be-logged" not in text and "secret=q" not in text

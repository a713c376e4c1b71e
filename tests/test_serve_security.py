"""The query service as a security boundary, against the live node through a request-counting proxy:
only the configured indices, only the filter language, body limits that hold when chunked, bearer
tokens, and a cap on requests in flight. Also a bounded OpenAPI-driven fuzz pass (schemathesis)."""
import asyncio
import re
import socket
import threading
import time

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from bridge import indexing, mapping
from bridge.stamp import IndexStamp
from tests.conftest import SAMPLE, load_jsonl
from tests.faults import report
from tests.proxy import AuthProxy
from tests.serving import running_service

pytestmark = [pytest.mark.integration, pytest.mark.model]

TOKEN = "s3rvice-t0ken-for-tests"
AUTH = {"authorization": f"Bearer {TOKEN}"}
SERVED, OTHER = "test-sec-served", "test-sec-other"


@pytest.fixture(scope="module")
def indices(client, encoder):
    for name in (SERVED, OTHER):
        client.indices.delete(index=name, ignore_unavailable=True)
        body = mapping.build(mapping.IndexConfig(), encoder.stamp)
        client.indices.create(index=name, body=body)
        indexing.run(client, encoder, name, iter(load_jsonl(SAMPLE, 30)),
                     IndexStamp.from_meta(body["mappings"]["_meta"][mapping.META_KEY]))
    yield
    for name in (SERVED, OTHER):
        client.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture(scope="module")
def proxy(node_url):
    with AuthProxy(node_url) as p:
        yield p


@pytest.fixture(scope="module")
def secured(proxy, indices, tmp_path_factory):
    tokens = tmp_path_factory.mktemp("tokens") / "tokens"
    tokens.write_text(f"# one token per line\nanother-client-token\n{TOKEN}\n")
    with running_service("--url", proxy.url, "serve", "--index", SERVED, "--allow-index", "test-sec-extra-*", "--ui",
                         "--auth-token-file", str(tokens), "--max-in-flight", "4", "--max-body-bytes", "20000") \
            as (base, proc):
        yield base, proc


def _searches(proxy) -> int:
    return sum("_search" in r or "_mapping" in r for r in proxy.requests)


def test_the_compare_page_is_public_but_its_data_needs_the_token(secured):
    """The page's files hold no data and load without a token (a browser cannot send one on navigation), under a
    policy that runs only this origin's script; what the page shows comes from the API, which needs the token."""
    base, _ = secured
    for path in ("/ui", "/ui/compare.js", "/ui/compare.css"):
        r = httpx.get(base + path)
        assert r.status_code == 200, path
        policy = r.headers["content-security-policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    page = httpx.get(base + "/ui").text
    assert "<script src=" in page and "<script>" not in page and " style=" not in page and "http" not in page
    assert httpx.post(base + "/ui", json={}).status_code in (401, 405)
    assert httpx.get(base + "/indices").status_code == 401
    assert httpx.get(base + "/indices", headers=AUTH).json() == {"indices": [SERVED], "patterns": ["test-sec-extra-*"],
                                                                 "default": SERVED}


def test_served_index_answers(secured):
    base, _ = secured
    r = httpx.post(base + "/search", json={"text": "cancer cells", "size": 3}, headers=AUTH)
    assert r.status_code == 200 and len(r.json()["hits"]) == 3


@pytest.mark.parametrize("name", [OTHER, "*", f"{SERVED},{OTHER}", "_all", "test-sec-*", "-x"])
def test_other_indices_are_refused_without_contacting_the_cluster(secured, proxy, name):
    base, _ = secured
    before = _searches(proxy)
    for endpoint in ("/search", "/query"):
        r = httpx.post(base + endpoint, json={"text": "cancer", "index": name}, headers=AUTH)
        assert r.status_code == 403, r.text
        assert "not served here" in r.json()["error"] and "\n" not in r.json()["error"]
    assert _searches(proxy) == before
    report("serve_other_index", index=name, status=403, cluster_requests=_searches(proxy) - before)


def test_an_allowed_pattern_reaches_the_cluster(secured, proxy):
    base, _ = secured
    before = _searches(proxy)
    r = httpx.post(base + "/search", json={"text": "cancer", "index": "test-sec-extra-missing"}, headers=AUTH)
    assert r.status_code == 404 and _searches(proxy) > before


@pytest.mark.parametrize("bad", [
    {"script": {"script": {"source": "Runtime.getRuntime().exec('id')"}}},
    {"terms": {"_id": {"index": OTHER, "id": "1", "path": "title"}}},
    {"bool": {"filter": [{"query_string": {"query": "*:*"}}]}},
    {"bool": {"must": [{"term": {"lang": "en"}}, {"more_like_this": {"like": "x"}}]}},
    {"percolate": {"field": "q", "document": {}}},
    {"has_child": {"type": "c", "query": {"match_all": {}}}},
    {"term": {"lang": {"value": "en", "boost": 1e9}}},
    {"term": {"title": "a", "text": "b"}},
    {"bool": {"filter": [{"bool": {"filter": [{"bool": {"filter": [{"bool": {"filter": []}}]}}]}}]}},
])
def test_filters_outside_the_language_are_refused_before_the_cluster(secured, proxy, bad):
    base, _ = secured
    before = _searches(proxy)
    for endpoint in ("/search", "/query"):
        r = httpx.post(base + endpoint, json={"text": "cancer", "filters": [bad]}, headers=AUTH)
        assert r.status_code == 400, r.text
        assert r.json()["error"].startswith("filters[0]")
    assert _searches(proxy) == before
    report("serve_bad_filter", filter=next(iter(bad)), status=400, error=r.json()["error"][:90],
           cluster_requests=_searches(proxy) - before)


def test_filters_in_the_language_restrict_the_hits(secured):
    base, _ = secured
    ids = [h["_id"] for h in load_jsonl(SAMPLE, 30)][:3]
    language = [{"bool": {"filter": [{"ids": {"values": ids}}, {"exists": {"field": "title"}}],
                          "must_not": [{"term": {"title": "no such title"}}]}}]
    r = httpx.post(base + "/search", json={"text": "cells", "size": 10, "filters": language}, headers=AUTH)
    assert r.status_code == 200 and {h["_id"] for h in r.json()["hits"]} <= set(ids)


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def _send_chunked(base: str, total: int, chunk: int = 64 * 1024) -> tuple[bytes, int]:
    """POST /expand with Transfer-Encoding: chunked; stops sending once the server has answered.
    Returns (the response, bytes sent). A reader thread takes the answer as it arrives: once
    the server closes, a chunk still on its way makes the kernel reset the connection, and a read after the
    reset can lose an answer that was already there."""
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(f"POST /expand HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\nauthorization: "
                 f"Bearer {TOKEN}\r\ntransfer-encoding: chunked\r\n\r\n".encode())
    answer: list[bytes] = []
    answering, answered = threading.Event(), threading.Event()

    def read():  # the whole response: headers and body may arrive in separate segments
        data = b""
        try:
            while True:
                part = sock.recv(4096)
                if not part:
                    break
                answering.set()
                data += part
                head, sep, body = data.partition(b"\r\n\r\n")
                length = re.search(rb"content-length: (\d+)", head, re.I)
                if sep and length and len(body) >= int(length.group(1)):
                    break
        except OSError:
            pass
        answer.append(data)
        answered.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sent, payload = 0, b'{"text": "' + b"a" * chunk
    try:
        while sent < total and not answering.wait(0.002):  # stop at the answer's first bytes
            sock.sendall(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
            sent += len(payload)
    except OSError:  # the server closed the connection after answering
        pass
    answered.wait(10)
    sock.close()
    return (answer[0] if answer else b""), sent


def test_a_chunked_body_over_the_limit_is_refused_while_reading(secured):
    base, proc = secured
    before = _rss_kib(proc.pid)
    reply, sent = _send_chunked(base, total=64 * 1024 * 1024)
    assert reply.startswith(b"HTTP/1.1 413"), reply[:200]
    assert b"over 20000 bytes" in reply
    grown = _rss_kib(proc.pid) - before
    report("serve_chunked_body", limit=20000, sent_before_413=sent, rss_growth_kib=grown)
    assert sent < 8 * 1024 * 1024, "the service kept reading long after the limit"
    assert grown < 16 * 1024, "memory grew with the body"


def test_json_nested_too_deeply_is_a_clear_400(secured):
    base, _ = secured
    deep = '{"text": "x", "filters": ' + "[" * 5000 + "]" * 5000 + "}"  # past Python's JSON recursion limit
    r = httpx.post(base + "/search", content=deep, headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 400 and "nested deeper" in r.json()["error"]
    shallow_but_deep = '{"text": "x", "filters": [' + '{"bool": {"filter": [' * 20 + "]}}" * 20 + "]}"
    r = httpx.post(base + "/search", content=shallow_but_deep, headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 400 and "nested deeper" in r.json()["error"]


@pytest.mark.parametrize("headers", [{}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN},
                                     {"authorization": f"Basic {TOKEN}"}])
def test_requests_without_a_valid_token_get_401(secured, proxy, headers):
    base, _ = secured
    before = len(proxy.requests)
    for endpoint in ("/expand", "/query", "/search", "/metrics", "/openapi.json"):
        r = httpx.request("GET" if endpoint in ("/metrics", "/openapi.json") else "POST", base + endpoint,
                          json=None if endpoint in ("/metrics", "/openapi.json") else {"text": "x"}, headers=headers)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer"), (endpoint, r.text)
    assert len(proxy.requests) == before
    assert httpx.get(base + "/healthz").status_code == 200  # probes need no token
    assert httpx.post(base + "/expand", json={"text": "x"}, headers={"authorization": "Bearer another-client-token"}
                      ).status_code == 200


def test_a_burst_over_max_in_flight_gets_fast_429s_and_health_stays_up(secured):
    base, _ = secured

    async def burst():
        async with httpx.AsyncClient(timeout=60) as c:
            async def one(i):
                return await c.post(base + "/search", json={"text": f"burst query number {i} about cells"},
                                    headers=AUTH)

            async def health():
                await asyncio.sleep(0.05)
                started = time.perf_counter()
                r = await c.get(base + "/healthz")
                return r.status_code, time.perf_counter() - started

            return await asyncio.gather(*[one(i) for i in range(120)], health())

    *responses, (health_status, health_s) = asyncio.run(burst())
    statuses = [r.status_code for r in responses]
    refused = [r for r in responses if r.status_code == 429]
    report("serve_burst", requests=len(statuses), ok=statuses.count(200), refused_429=len(refused),
           healthz_seconds=round(health_s, 3), max_in_flight=4)
    assert refused and statuses.count(200) >= 4 and set(statuses) <= {200, 429}, statuses
    assert all(r.headers["retry-after"] == "1" and "in flight" in r.json()["error"] for r in refused)
    assert health_status == 200 and health_s < 5


def test_fuzzed_requests_never_get_5xx_or_a_stack_trace(secured):
    """schemathesis generates requests for every operation of the service's OpenAPI schema (bounded:
    25 examples each, valid and invalid); none may get a 5xx, a stack trace or a non-JSON error."""
    base, _ = secured
    schema = schemathesis.openapi.from_url(base + "/openapi.json", headers=AUTH)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /expand", "POST /query", "POST /search"}
    seen: dict[int, int] = {}
    for op in operations:
        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case):
            response = case.call(headers=AUTH)
            seen[response.status_code] = seen.get(response.status_code, 0) + 1
            assert response.status_code < 500, (case.method, case.path, case.body, response.text[:500])
            assert "Traceback" not in response.text
            if response.status_code >= 400:
                assert isinstance(response.json().get("error"), str)

        check()
    report("serve_fuzz", requests=sum(seen.values()), statuses={str(k): v for k, v in sorted(seen.items())})
    assert sum(seen.values()) >= 25 * 3 and any(status >= 400 for status in seen), seen


def test_the_cli_applies_the_same_filter_language(node_url, indices):
    from tests.conftest import cli

    proc = cli("--url", node_url, "search", SERVED, "cells", "--filter", '{"script": {"script": "1"}}')
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith(
        "error: filters[0]: 'script' is not an allowed filter"), proc.stderr
    ok = cli("--url", node_url, "search", SERVED, "cells", "--filter", '{"exists": {"field": "title"}}')
    assert ok.returncode == 0, ok.stderr


def test_serving_beyond_loopback_without_a_token_warns(monkeypatch, caplog):
    import uvicorn
    from click.testing import CliRunner

    from bridge.cli import main_group

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)  # nothing is bound
    runner = CliRunner()
    with caplog.at_level("WARNING"):
        wide = runner.invoke(main_group, ["serve", "--host", "10.1.2.3", "--model", "splade-tiny"])
    assert wide.exit_code == 0, wide.output
    assert any("without --auth-token-file" in r.getMessage() for r in caplog.records)
    caplog.clear()
    with caplog.at_level("WARNING"):
        assert runner.invoke(main_group, ["serve", "--host", "127.0.0.1", "--model", "splade-tiny"]).exit_code == 0
    assert not any("without --auth-token-file" in r.getMessage() for r in caplog.records)

"""The query side follows the index (live): a service under steady load while `reindex --model B` moves its alias
answers every query with the model of the index that answered (never another); a Searcher from the API follows
the alias too; an inference-free index is served like the CLI searches it; the request boundary is strict and
every error has one shape; trickling uploads starve nobody."""
from __future__ import annotations

import json
import shutil
import socket
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import SAMPLE, cli, load_jsonl
from tests.serving import running_service

pytestmark = [pytest.mark.integration, pytest.mark.model]


@pytest.fixture(scope="module")
def model_b(tiny_model, tmp_path_factory):
    """SPLADE-tiny with its MLM bias nudged: another model (another weights hash, other vectors) of the same
    shape, for a reindex to a new model."""
    from safetensors.torch import load_file, save_file

    out = tmp_path_factory.mktemp("model-b")
    for f in tiny_model.iterdir():
        shutil.copy(f, out / f.name)
    weights = load_file(out / "model.safetensors")
    weights["cls.predictions.bias"] = weights["cls.predictions.bias"] + 0.05
    save_file(weights, out / "model.safetensors", metadata={"format": "pt"})
    return str(out)


@pytest.fixture
def alias_on_tiny(node_url, client):
    """300 sample documents in an index made with SPLADE-tiny, behind a fresh alias; everything removed after."""
    name, alias = f"qs-{uuid.uuid4().hex[:8]}", f"qs-live-{uuid.uuid4().hex[:8]}"
    proc = cli("--url", node_url, "ingest", name, str(SAMPLE), "--model", "splade-tiny", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    client.indices.update_aliases(body={"actions": [{"add": {"index": name, "alias": alias}}]})
    yield name, alias
    client.indices.delete(index=f"{alias}-*,{name}", ignore_unavailable=True)


def test_service_follows_an_alias_to_a_new_model_under_load(node_url, client, alias_on_tiny, model_b):
    name, alias = alias_on_tiny
    queries = [d["title"] for d in load_jsonl(SAMPLE, 60)]
    log: list[tuple[float, int, dict]] = []
    with running_service("--url", node_url, "serve", "--index", alias, "--max-in-flight", "64", model=None) as (base, _):
        stop = threading.Event()

        def one(i: int) -> None:
            started = time.monotonic()
            r = httpx.post(base + "/search", json={"text": queries[i % len(queries)], "size": 5}, timeout=30)
            log.append((started, r.status_code, r.json() | {"latency": time.monotonic() - started,
                                                            "retry_after": r.headers.get("retry-after")}))

        def load() -> None:  # 20 queries/s from a pool of clients, until stopped
            with ThreadPoolExecutor(8) as pool:
                i = 0
                while not stop.is_set():
                    pool.submit(one, i)
                    i += 1
                    time.sleep(0.05)

        loader = threading.Thread(target=load)
        loader.start()
        time.sleep(5)
        swap_started = time.monotonic()
        proc = cli("--url", node_url, "reindex", "--source", alias, "--alias", alias, "--model", model_b,
                   "--format", "json")
        swapped_at = time.monotonic()
        time.sleep(8)
        stop.set()
        loader.join()
        assert proc.returncode == 0, proc.stderr
        target = json.loads(proc.stdout)["plan"]["target"]
        metrics = httpx.get(base + "/metrics").text
    models = {}
    for index in (name, target):
        stamp = json.loads(json.dumps(client.indices.get_mapping(index=index)[index]["mappings"]["_meta"]))
        models[index] = stamp["splade_bridge"]["model"]["revision"]
    assert models[name] != models[target]
    ok = [(t, body) for t, status, body in log if status == 200]
    wrong = [body["index"] for _, body in ok if models.get(body["index"]) != body["model"]["revision"]]
    errors = [(status, body) for _, status, body in log if status != 200]
    assert not wrong, wrong[:5]
    assert all(status == 503 and body["retry_after"] for status, body in errors), errors[:5]
    assert not errors, f"{len(errors)} answers were 503 although the model was announced before the swap"
    assert {body["index"] for _, body in ok} == {name, target}, "the service never followed the alias"
    after = [body for t, body in ok if t > swapped_at + 3]
    assert after and all(body["index"] == target for body in after)
    assert 'splade_alias_changes_total 1.0' in metrics and 'splade_model_loads_total{result="ok"} 1.0' in metrics

    def p(xs, q):
        return round(1000 * statistics.quantiles(xs, n=100)[q - 1], 1) if len(xs) > 2 else None

    phases = {"before": [b["latency"] for t, b in ok if t < swap_started],
              "during": [b["latency"] for t, b in ok if swap_started <= t <= swapped_at],
              "after": [b["latency"] for t, b in ok if t > swapped_at]}
    print("requests", len(log), {k: {"n": len(v), "p50_ms": p(v, 50), "p99_ms": p(v, 99)} for k, v in phases.items()})


def test_a_searcher_follows_the_alias(node_url, client, alias_on_tiny, model_b, encoder):
    from bridge import api

    name, alias = alias_on_tiny
    now = [0.0]
    searcher = api.Searcher(client, encoder, alias, follow_seconds=2.0, clock=lambda: now[0])
    hits = searcher.search("cells")
    assert hits and hits.index == name and hits.model.model == "splade-tiny"
    # the alias moves to an index of the same model: followed within follow_seconds
    twin = f"{name}-twin"
    proc = cli("--url", node_url, "ingest", twin, str(SAMPLE), "--model", "splade-tiny")
    assert proc.returncode == 0, proc.stderr
    client.indices.update_aliases(body={"actions": [{"remove": {"index": name, "alias": alias}},
                                                    {"add": {"index": twin, "alias": alias}}]})
    now[0] = 1.9
    assert searcher.search("cells").index == name  # trusted for follow_seconds: the old index still answers
    now[0] = 2.1
    assert searcher.search("cells").index == twin
    # then to an index of another model: refused, never expanded by the wrong model
    other = f"{name}-other"
    proc = cli("--url", node_url, "ingest", other, str(SAMPLE), "--model", model_b)
    assert proc.returncode == 0, proc.stderr
    client.indices.update_aliases(body={"actions": [{"remove": {"index": twin, "alias": alias}},
                                                    {"add": {"index": other, "alias": alias}}]})
    client.indices.delete(index=twin)  # gone at once: followed at once, not after follow_seconds
    with pytest.raises(api.ModelMismatch):
        searcher.search("cells")
    client.indices.delete(index=other)


def test_inference_free_index_served_as_the_cli_searches_it(node_url, client, alias_on_tiny):
    name, alias = alias_on_tiny
    assert cli("--url", node_url, "idf", "build", name).returncode == 0
    proc = cli("--url", node_url, "search", alias, "vitamin d deficiency", "--inference-free", "--format", "json",
               "--size", "10")
    assert proc.returncode == 0, proc.stderr
    expected = [h["_id"] for h in json.loads(proc.stdout)["hits"]]
    with running_service("--url", node_url, "serve", "--index", alias, model=None) as (base, _):
        r = httpx.post(base + "/search", json={"text": "vitamin d deficiency", "inference_free": True, "size": 10})
        assert r.status_code == 200, r.text
        assert [h["_id"] for h in r.json()["hits"]] == expected and expected
        assert r.json()["index"] == name
    client.indices.delete(index=f"{name}__splade_idf", ignore_unavailable=True)


def test_a_strict_boundary_with_one_error_shape(node_url, alias_on_tiny):
    name, alias = alias_on_tiny
    with running_service("--url", node_url, "serve", "--index", alias, "--body-timeout", "3", "--max-in-flight", "4") \
            as (base, _):
        cases = [
            ({"text": "vitamin d", "filter": [{"term": {"x": 1}}]}, 422, "unknown field: filter"),
            ({"text": "vitamin d", "from": 5000}, 422, "'from' is not supported"),
            ({"text": "vitamin d", "size": True}, 422, "size"),
            ({"text": "vitamin d", "size": "5"}, 422, "size"),
            ({"text": "   "}, 400, "empty"),
        ]
        for payload, status, needle in cases:
            r = httpx.post(base + "/search", json=payload)
            assert "Traceback" not in r.text and isinstance(r.json().get("error", ""), str), r.text
            assert r.status_code == status and needle in r.json()["error"], (payload, r.status_code, r.text)
        # a filter in the language that the cluster refuses: 400 with the cluster's reason, the caller's mistake
        # (the index is in passage mode, the default: its weights are the nested field's rank_features)
        r = httpx.post(base + "/search", json={"text": "cells", "filters": [{"term": {"splade.weights": "abc"}}]})
        assert r.status_code == 400 and "rank_features" in r.json()["error"], r.text
        for method, path in (("GET", "/nowhere"), ("GET", "/search"), ("DELETE", "/expand")):
            r = httpx.request(method, base + path)
            assert r.status_code in (404, 405) and set(r.json()) == {"error"}, r.text
        r = httpx.post(base + "/expand", content=b'{"text": "\xff\xfe"}', headers={"content-type": "application/json"})
        assert 400 <= r.status_code < 500 and set(r.json()) == {"error"}, r.text
        assert httpx.get(base + "/readyz").json()["status"] == "ready"
        r = httpx.post(base + "/search", json={"text": "cells"})
        assert r.json()["index"] == name and r.json()["model"]["model"] == "splade-tiny"

        # 16 uploads trickling a byte at a time hold no in-flight slot (4), and end in 408 after 3 s
        socks = []
        for _ in range(16):
            s = socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])))
            s.sendall(b"POST /search HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 40\r\n\r\n{")
            socks.append(s)
        started = time.monotonic()
        served = []
        while time.monotonic() - started < 2.5:
            for s in socks:
                s.sendall(b" ")
            served.append(httpx.post(base + "/search", json={"text": "cells"}, timeout=10).status_code)
            time.sleep(0.3)
        assert served and set(served) == {200}, served
        time.sleep(1.5)
        for s in socks:
            s.settimeout(5)
            answer = s.recv(4096).decode("latin-1")
            assert answer.startswith("HTTP/1.1 408") and "not received within" in answer, answer[:200]
            s.close()

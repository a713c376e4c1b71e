"""The node `cluster up --plugin neural-search` starts (scripts/test.sh, BRIDGE_URL_NEURAL): the plugins and the
assembled lang-painless module load and work, and the CLI says which two-phase and hybrid path it took."""
import json

import pytest

from bridge.connection.client import connect as make_client
from bridge.config import ConnectionConfig
from tests.conftest import SAMPLE, cli
from tests.engines import NEURAL, engine_url

pytestmark = pytest.mark.integration
INDEX = "test-neural-cli"


@pytest.fixture(scope="module")
def neural(tmp_path_factory):
    url = engine_url(NEURAL)
    client = make_client(ConnectionConfig(urls=(url,), timeout=60))
    client.indices.delete(index=INDEX, ignore_unavailable=True)
    src = tmp_path_factory.mktemp("neural") / "docs.jsonl"
    src.write_text("".join(line for _, line in zip(range(40), open(SAMPLE))))
    # windows max-pooled: the plugin's native two-phase and hybrid read one flat vector (not passage mode's)
    ingest = cli("--url", url, "ingest", INDEX, str(src), "--model", "splade-tiny", "--format", "json",
                 "--long-documents", "window")
    assert ingest.returncode == 0, ingest.stderr[-2000:]
    yield url, client
    client.indices.delete(index=INDEX, ignore_unavailable=True)


def test_the_plugins_and_the_assembled_painless_module_load_and_work(neural):
    _, client = neural
    assert {"opensearch-knn", "opensearch-neural-search"} <= {r["component"] for r in client.cat.plugins(format="json")}
    nodes = client.nodes.info(metric="plugins")["nodes"]
    modules = {m["name"] for node in nodes.values() for m in node["modules"]}
    assert {"lang-painless", "mapper-extras"} <= modules
    # painless compiles and runs (k-NN extends it; a module that loaded but could not compile would fail here)
    resp = client.search(index=INDEX, body={"size": 1, "query": {"script_score": {
        "query": {"match_all": {}}, "script": {"lang": "painless", "source": "params.x * 2", "params": {"x": 21}}}}})
    assert resp["hits"]["hits"][0]["_score"] == 42.0


def search(url, *args):
    out = cli("--url", url, "search", INDEX, "vitamin D deficiency", "--size", "5", "--format", "json", *args)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout)["hits"], out.stderr


def test_neural_sparse_two_phase_and_hybrid_say_which_path_ran(neural):
    url, _ = neural
    plain, _ = search(url)
    sparse, _ = search(url, "--form", "neural_sparse")
    assert [h["_id"] for h in sparse] == [h["_id"] for h in plain]
    assert [h["_score"] for h in sparse] == pytest.approx([h["_score"] for h in plain], rel=5e-3)
    by_plugin, said = search(url, "--form", "neural_sparse", "--mode", "two-phase")
    assert "neural_sparse_two_phase_processor" in said
    assert [h["_score"] for h in by_plugin] == pytest.approx([h["_score"] for h in plain], rel=5e-3)
    _, said = search(url, "--form", "neural_sparse", "--mode", "two-phase", "--native", "never")
    assert "rescore in standard DSL" in said
    _, said = search(url, "--mode", "two-phase")  # rank_feature: the processor only reads neural_sparse
    assert "rescore in standard DSL" in said
    native, said = search(url, "--mode", "hybrid", "--hybrid-method", "rrf")
    assert "native rrf fusion" in said
    client_side, said = search(url, "--mode", "hybrid", "--hybrid-method", "rrf", "--native", "never")
    assert "client-side rrf fusion" in said
    _, said = search(url, "--mode", "hybrid")
    assert "native norm fusion" in said  # the default method
    assert [h["_score"] for h in native] == pytest.approx([h["_score"] for h in client_side], rel=1e-4)
    printed = cli("--url", url, "search", INDEX, "vitamin D", "--mode", "hybrid", "--print-query")
    body = json.loads(printed.stdout)
    assert "hybrid" in body["query"] and "normalization-processor" in json.dumps(body["search_pipeline"])


def test_asking_for_native_search_where_the_plugin_is_missing_says_why(neural, node_url, tmp_path):
    """On the plain 2.19.6 node: --native always is refused in one line naming the plugin, exit 2; on the plugin's
    node, for a passage index, naming passage mode."""
    url, _ = neural
    index = "test-neural-missing"
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(line for _, line in zip(range(5), open(SAMPLE))))
    try:
        assert cli("--url", node_url, "ingest", index, str(src), "--model", "splade-tiny",
                   "--long-documents", "window").returncode == 0
        out = cli("--url", node_url, "search", index, "vitamin", "--mode", "hybrid", "--native", "always")
        assert out.returncode == 2
        assert "native search asked for, but the cluster has no neural-search plugin" in out.stderr
        # a passage index (the default mode) is refused for its nested query, whatever the plugins
        assert cli("--url", url, "ingest", index, str(src), "--model", "splade-tiny").returncode == 0
        out = cli("--url", url, "search", index, "vitamin", "--mode", "hybrid", "--native", "always")
        assert out.returncode == 2 and "native search asked for, but passage mode" in out.stderr, out.stderr
    finally:
        make_client(ConnectionConfig(urls=(node_url,))).indices.delete(index=index, ignore_unavailable=True)
        make_client(ConnectionConfig(urls=(url,))).indices.delete(index=index, ignore_unavailable=True)


def test_the_service_returns_the_native_hybrid_request_and_says_how_it_searched(neural):
    url, _ = neural
    import httpx

    from tests.serving import running_service

    with running_service("--url", url, "serve", "--index", INDEX) as (base, _):
        query = httpx.post(base + "/query", json={"text": "vitamin D", "mode": "hybrid"}, timeout=60).json()
        assert query["fusion"] == "native norm" and "hybrid" in query["query"]["query"]
        plain = httpx.post(base + "/query", json={"text": "vitamin D", "mode": "hybrid", "native": "never"},
                           timeout=60).json()
        assert plain["fusion"]["method"] == "norm" and "bm25_query" in plain
        found = httpx.post(base + "/search", json={"text": "vitamin D", "mode": "two-phase", "form": "neural_sparse",
                                                   "size": 3}, timeout=60).json()
        assert found["two_phase"] == "native" and len(found["hits"]) == 3

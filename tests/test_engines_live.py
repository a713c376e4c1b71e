"""Behaviour that differs between engines, and the same CLI commands against each (only --url differs)."""
import json

import pytest

from bridge.connection.client import connect as make_client
from bridge.config import ConnectionConfig
from tests.conftest import SAMPLE, cli
from tests.engines import ENGINES, engine_url

pytestmark = pytest.mark.integration


@pytest.fixture(params=list(ENGINES))
def live(request):
    url = engine_url(request.param)
    return request.param, url, make_client(ConnectionConfig(urls=(url,), timeout=60))


def test_dotted_keys_are_stored_but_unaddressable_and_escaped_keys_work(live):
    """Measured: OpenSearch 2.19/3.x and Elasticsearch 7.17 all accept a dotted feature key at index time,
    and none can address it ('v.a.b' is read as field 'v.a', feature 'b'); the escaped key works."""
    name, _, client = live
    index = "test-dotted-keys"
    client.indices.delete(index=index, ignore_unavailable=True)
    client.indices.create(index=index, body={"mappings": {"properties": {"v": {"type": "rank_features"}}}})
    try:
        client.index(index=index, id="1", body={"v": {"a.b": 1.0}}, refresh=True)
        dotted = client.search(index=index, body={"query": {"rank_feature": {"field": "v.a.b", "linear": {}}}})
        assert dotted["hits"]["hits"] == []
        client.index(index=index, id="2", body={"v": {"a%2Eb": 2.0}}, refresh=True)
        hits = client.search(index=index, body={"query": {"rank_feature": {"field": "v.a%2Eb", "linear": {},
                                                                           "boost": 100.0}}})["hits"]["hits"]
        assert [h["_id"] for h in hits] == ["2"]
        assert hits[0]["_score"] == pytest.approx(200.0, rel=1e-3)  # boosts above 64 are fine on rank_feature
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)


def test_same_cli_commands_against_each_engine(live, tmp_path):
    name, url, client = live
    index = "test-cli-engines"
    client.indices.delete(index=index, ignore_unavailable=True)
    try:
        src = tmp_path / "docs.jsonl"
        src.write_text("".join(line for _, line in zip(range(30), open(SAMPLE))))
        ingest = cli("--url", url, "ingest", index, str(src), "--model", "splade-tiny", "--format", "json")
        assert ingest.returncode == 0, ingest.stderr[-2000:]
        assert json.loads(ingest.stdout)["indexed"] == 30
        search = cli("--url", url, "search", index, "vitamin D", "--size", "3", "--format", "json")
        assert search.returncode == 0, search.stderr[-2000:]
        hits = json.loads(search.stdout)["hits"]
        assert len(hits) == 3 and hits[0]["_score"] >= hits[1]["_score"] > 0
        # two-phase (standard rescore DSL) gives the same exact scores; hybrid fuses client-side everywhere
        two = json.loads(cli("--url", url, "search", index, "vitamin D", "--size", "3", "--mode", "two-phase",
                             "--format", "json").stdout)["hits"]
        assert [h["_id"] for h in two] == [h["_id"] for h in hits]
        assert [h["_score"] for h in two] == pytest.approx([h["_score"] for h in hits], rel=5e-3)
        hybrid = cli("--url", url, "search", index, "vitamin D", "--size", "3", "--mode", "hybrid", "--format", "json")
        assert hybrid.returncode == 0 and len(json.loads(hybrid.stdout)["hits"]) == 3, hybrid.stderr[-2000:]
        assert "client-side norm" in hybrid.stderr
        status = cli("--url", url, "status", "--format", "json")
        engine = json.loads(status.stdout)
        assert engine["engine"] == name.split("-")[0]
        assert any(i["index"] == index and i["model"] == "splade-tiny" for i in engine["indices"])
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)

"""``reindex`` builds the new index like the source: shards, field type, pruning, quantization, vector kept
out of ``_source``, and the long-document mode, also when a new ``--model`` is given."""
import json

import pytest

from bridge.indices import stamp_of
from tests.conftest import SAMPLE, cli

pytestmark = [pytest.mark.integration, pytest.mark.model]


def test_a_reindexed_index_has_the_source_layout(node_url, client, tmp_path):
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(line for _, line in zip(range(20), open(SAMPLE))))
    url = ["--url", node_url]
    client.indices.delete(index="layout*", ignore_unavailable=True)
    try:
        create = cli(*url, "index", "create", "layout-src", "--model", "splade-tiny", "--shards", "2", "--top-k", "48",
                     "--quantize", "int", "--scale", "50", "--exclude-vector", "--truncate")
        assert create.returncode == 0, create.stderr
        assert cli(*url, "ingest", "layout-src", str(src), cwd=tmp_path).returncode == 0
        runs = [cli(*url, "reindex", "--source", "layout-src", "--alias", alias, *extra, "--format", "json")
                for alias, extra in (("layout-same", ()), ("layout-new-model", ("--model", "splade-tiny")))]
        source = stamp_of(client, "layout-src")
        for run in runs:
            assert run.returncode == 0, run.stderr[-2000:]
            target = json.loads(run.stdout)["plan"]["target"]
            stamp = stamp_of(client, target)
            settings = client.indices.get_settings(index=target)[target]["settings"]["index"]
            mapping = client.indices.get_mapping(index=target)[target]["mappings"]
            assert settings["number_of_shards"] == "2"
            assert mapping["properties"]["splade"]["type"] == "rank_features"
            assert mapping["_source"] == {"excludes": ["splade"]} and stamp.source_excludes_vector
            assert stamp.pruning == source.pruning and stamp.pruning.top_k == 48
            assert stamp.quantization == source.quantization and stamp.scale == 50
            assert stamp.model.long_documents == source.model.long_documents
            assert stamp.model.long_documents.startswith("truncate")
    finally:
        client.indices.delete(index="layout*", ignore_unavailable=True)

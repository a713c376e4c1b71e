"""The live engines CI starts (scripts/test.sh): name -> env var holding its URL."""
import os
from pathlib import Path

from tests.conftest import reachable, unavailable

ENGINES = {"opensearch-2.19": "BRIDGE_URL", "opensearch-3": "BRIDGE_URL_OS3", "elasticsearch-7.17": "BRIDGE_URL_ES7"}
# OpenSearch 2.19.1 with the k-NN and neural-search plugins (`cluster up --plugin neural-search`): neural_sparse,
# the native two-phase processor and the hybrid query
NEURAL = "opensearch-2.19.1+neural-search"
PLUGIN_ENGINES = {NEURAL: "BRIDGE_URL_NEURAL"}


def engine_url(name: str) -> str:
    var = {**ENGINES, **PLUGIN_ENGINES}[name]
    url = os.environ.get(var, "http://127.0.0.1:9200" if var == "BRIDGE_URL" else "")
    if not url or not reachable(url):
        unavailable(f"no {name} node at {var}={url!r} (scripts/test.sh starts one)")
    return url


def index_collection(name: str, index: str, encoder, corpus: Path):
    """(client, ingest summary): ``corpus`` (a BEIR corpus.jsonl) ingested into a fresh ``index`` on engine
    ``name``, through the whole pipeline, with ``encoder``'s stamp and the default index options."""
    from bridge import indexing, mapping, records
    from bridge.config import ConnectionConfig
    from bridge.connection.client import connect
    from bridge.stamp import IndexStamp

    client = connect(ConnectionConfig(urls=(engine_url(name),), timeout=120))
    client.indices.delete(index=index, ignore_unavailable=True)
    body = mapping.build(mapping.IndexConfig(), encoder.stamp)
    client.indices.create(index=index, body=body)
    stamp = IndexStamp.from_meta(body["mappings"]["_meta"][mapping.META_KEY])
    with open(corpus, "rb") as lines:
        return client, indexing.run(client, encoder, index, records.read_jsonl(lines), stamp)

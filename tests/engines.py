"""The live engines CI starts (scripts/test.sh): name -> env var holding its URL."""
import os

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

#!/usr/bin/env bash
# The test command: a venv with the test extras, real local OpenSearch/Elasticsearch nodes and a Kafka
# broker (unless BRIDGE_URL* / BRIDGE_KAFKA point at them), the whole pytest suite, and everything it
# started stopped again however the run ends.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
# Nodes: OpenSearch 2.19 (BRIDGE_URL), OpenSearch 3.x (BRIDGE_URL_OS3), Elasticsearch 7.17 (BRIDGE_URL_ES7)
# and OpenSearch with plugins (BRIDGE_URL_NEURAL); a variable already set means "use that node", an unset
# one gets a local node.
port=${BRIDGE_TEST_PORT:-9200}
nodes=()
[ -n "${BRIDGE_URL:-}" ] || nodes+=("BRIDGE_URL --port $port")
[ -n "${BRIDGE_URL_OS3:-}" ] || nodes+=("BRIDGE_URL_OS3 --port $((port + 1)) --server-version 3.8.0")
[ -n "${BRIDGE_URL_ES7:-}" ] || nodes+=("BRIDGE_URL_ES7 --port $((port + 2)) --distribution elasticsearch --server-version 7.17.29")
# OpenSearch 2.19.1 with the k-NN and neural-search plugins (BRIDGE_URL_NEURAL): neural_sparse, the native
# two-phase processor and the hybrid query
[ -n "${BRIDGE_URL_NEURAL:-}" ] || nodes+=("BRIDGE_URL_NEURAL --port $((port + 3)) --plugin neural-search")
# A Kafka broker for the stream-worker tests (BRIDGE_KAFKA), unless the variable points at one.
kafka_port=${BRIDGE_KAFKA_PORT:-19092}
stop_nodes() {
  # down finds a node by its port (and version); --plugin only says what `up` installs
  for node in "${nodes[@]}"; do args=${node#* }; .venv/bin/splade-bridge cluster down ${args//--plugin neural-search/} || true; done
  [ -n "${started_kafka:-}" ] && .venv/bin/splade-bridge kafka down --port "$kafka_port" || true
}
trap stop_nodes EXIT
for node in "${nodes[@]}"; do
  var=${node%% *}
  url=$(.venv/bin/splade-bridge cluster up ${node#* })
  export "$var=$url"
done
if [ -z "${BRIDGE_KAFKA:-}" ]; then
  started_kafka=1
  BRIDGE_KAFKA=$(.venv/bin/splade-bridge kafka up --port "$kafka_port")
  export BRIDGE_KAFKA
fi
.venv/bin/python -m pytest "$@"

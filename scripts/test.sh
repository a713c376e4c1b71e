#!/usr/bin/env bash
# The test command: a venv with the test extras, a real local OpenSearch node (unless BRIDGE_URL points
# at one), the whole pytest suite, and the node stopped again however the run ends.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
if [ -z "${BRIDGE_URL:-}" ]; then
  port=${BRIDGE_TEST_PORT:-9200}
  trap '.venv/bin/splade-bridge cluster down --port "$port" || true' EXIT
  .venv/bin/splade-bridge cluster up --port "$port"
  export BRIDGE_URL="http://127.0.0.1:$port"
fi
.venv/bin/python -m pytest "$@"

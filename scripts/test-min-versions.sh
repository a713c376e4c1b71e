#!/usr/bin/env bash
# The declared floors, tested: a virtualenv (.venv-min) with every runtime dependency of pyproject.toml
# (core and the eval, serve, kafka, aws, local, elasticsearch extras) pinned to its lowest allowed version,
# then the unit tests (no node, no broker). A periodic job, not part of every CI run: it downloads an old
# torch (~3 GB with its CUDA libraries). Run it when a floor changes and monthly; pytest arguments pass
# through.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
venv=${MIN_VENV:-.venv-min}
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
"$python" - "$constraints" <<'EOF'
import re, sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
floors = {}
for req in project["dependencies"] + [r for x in ("eval", "serve", "kafka", "aws", "local", "elasticsearch")
                                      for r in extras[x]]:
    m = re.match(r"^([A-Za-z0-9_.-]+)>=([^,;\s]+)", req)
    if m:
        floors[m.group(1).lower()] = m.group(2)
open(sys.argv[1], "w").write("".join(f"{name}=={version}\n" for name, version in sorted(floors.items())))
print("floors:", ", ".join(f"{n} {v}" for n, v in sorted(floors.items())))
EOF
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -c "$constraints" -e ".[test]"
"$venv/bin/python" - "$constraints" <<'EOF'
import sys
from importlib.metadata import version
for line in open(sys.argv[1]):
    name, want = line.strip().split("==")
    assert version(name) == want, f"{name} {version(name)} installed, floor {want}"
print("installed exactly the floors")
EOF
export HF_HUB_OFFLINE=1 TRANSFORMERS_VERBOSITY=error
"$venv/bin/python" -m pytest -m "not integration and not kafka and not slow and not faults" -q "$@"

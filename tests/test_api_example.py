"""The README's "Python API" example, run as written against the live node (its asserts are the test)."""
import os
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.model]


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1, "the Python API section has one example"
    return blocks[0]


def test_readme_python_api_example_runs(node_url, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(readme_example())
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "BRIDGE_URL": node_url, "BRIDGE_MODEL": "splade-tiny",
                               "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "as expected: index 'no-such-index' not found" in proc.stdout


def test_example_exercises_each_part_of_the_api():
    code = readme_example()
    for call in ("bridge.connect(", "bridge.load_encoder(", "bridge.create_index(", "bridge.open_index(",
                 "bridge.ingest(", "bridge.expand(", "bridge.open_searcher(", "bridge.evaluate(", "BRIDGE_URL",
                 "BRIDGE_MODEL", "assert "):
        assert call in code, call

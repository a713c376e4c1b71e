"""``pip install .`` with no extras, then the commands a plain install promises. The fresh virtualenv holds
exactly the core dependencies' closure (linked from the test environment, so no download), the project
is installed into it by pip, and scipy, ir_measures, fastapi & co. are not importable there."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.conftest import REPO, SAMPLE

pytestmark = [pytest.mark.integration, pytest.mark.model]


def core_closure() -> set[str]:
    """Distributions the project needs with no extras, transitively (markers evaluated here)."""
    todo = [Requirement(r) for r in metadata.requires("splade-bridge") or []]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        dist = metadata.distribution(req.name)
        name = dist.metadata["Name"].lower()
        if name in seen:
            continue
        seen.add(name)
        todo += [Requirement(r) for r in dist.requires or []]
    return seen


@pytest.fixture(scope="module")
def plain_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("plain") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    for name in core_closure():
        for entry in {Path(f.parts[0]) for f in metadata.distribution(name).files or [] if f.parts[0] != ".."}:
            src = Path(metadata.distribution(name).locate_file(entry))
            if src.exists() and not (site / entry).exists():
                (site / entry).symlink_to(src)
    # a copy: an in-tree build/ left by an earlier run could ship modules that no longer exist
    project = venv.parent / "project"
    shutil.copytree(REPO, project, ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "runs",
                                                                 "test-artifacts", "__pycache__", ".pytest_cache", ".hypothesis"))
    pip = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(project)],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stderr[-3000:]
    return venv


def test_the_plain_install_has_no_extras(plain_venv):
    python = plain_venv / "bin" / "python"
    for module in ("scipy", "ir_measures", "fastapi", "sentence_transformers", "confluent_kafka", "botocore",
                   "onnxruntime"):
        probe = subprocess.run([str(python), "-c", f"import {module}"], capture_output=True, text=True)
        assert probe.returncode != 0, f"{module} is importable in the plain install"


def test_a_backend_whose_extra_is_missing_is_named_in_one_line(plain_venv):
    bridge = str(plain_venv / "bin" / "splade-bridge")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([bridge, "expand", "vitamin d", "--model", "splade-tiny", "--backend", "onnx"], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].endswith("onnxruntime is missing: pip install 'splade-bridge[onnx]'")
    auto = subprocess.run([bridge, "expand", "vitamin d", "--model", "splade-tiny", "--format", "json"], env=env,
                          capture_output=True, text=True)
    assert auto.returncode == 0 and "vitamin" in json.loads(auto.stdout)["tokens"]  # auto falls back to torch


def test_reindex_on_a_plain_install(plain_venv, node_url, client, tmp_path):
    bridge = str(plain_venv / "bin" / "splade-bridge")
    env = {**os.environ, "BRIDGE_URL": node_url, "HF_HUB_OFFLINE": "1"}
    src = tmp_path / "docs.jsonl"
    src.write_text("".join(line for _, line in zip(range(30), open(SAMPLE))))
    for name in ("plain-src", "plain*"):
        client.indices.delete(index=name, ignore_unavailable=True)
    try:
        ingest = subprocess.run([bridge, "ingest", "plain-src", str(src), "--model", "splade-tiny"], env=env,
                                capture_output=True, text=True, cwd=tmp_path)
        assert ingest.returncode == 0, ingest.stderr[-2000:]
        reindex = subprocess.run([bridge, "reindex", "--source", "plain-src", "--alias", "plain", "--format", "json"],
                                 env=env, capture_output=True, text=True)
        assert reindex.returncode == 0, reindex.stderr[-3000:]
        summary = json.loads(reindex.stdout)
        assert summary["swapped"] and summary["target_count"] == 30 and summary["verified_queries"] == 5
    finally:
        client.indices.delete(index="plain*", ignore_unavailable=True)

"""Helpers of the fault tests: dedicated nodes the tests may kill, the CLI as a subprocess, and a
checksum over what an index stores."""
from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.request
from pathlib import Path

from tests.conftest import cli


def fault_port(offset: int) -> int:
    """Ports above the three nodes scripts/test.sh starts (BRIDGE_TEST_PORT .. +3)."""
    return int(os.environ.get("BRIDGE_TEST_PORT", "9200")) + offset


def node(action: str, port: int, *settings: str) -> dict:
    """``splade-bridge cluster up|down|status`` for a node on ``port``."""
    args = ["cluster", action, "--port", str(port)]
    for s in settings:
        args += ["--setting", s]
    if action != "down":
        args += ["--format", "json"]
    out = cli(*args, timeout=240)
    if out.returncode != 0:
        raise RuntimeError(f"cluster {action} failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout) if action != "down" else {}


def get(url: str, path: str) -> dict:
    with urllib.request.urlopen(url + path, timeout=30) as r:
        return json.loads(r.read())


def wait_for(predicate, timeout: float, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError("condition not met in time")


def stored_checksum(client, index: str, field: str = "splade") -> tuple[str, int, set[str]]:
    """(sha256 over sorted (id, stored vector), documents, ids) of everything in ``index``."""
    from opensearchpy.helpers import scan

    rows = {}
    for hit in scan(client, index=index, query={"query": {"match_all": {}}}, _source=[field], size=1000):
        assert hit["_id"] not in rows, f"id {hit['_id']} returned twice"
        rows[hit["_id"]] = json.dumps(hit["_source"][field], sort_keys=True)
    digest = hashlib.sha256()
    for doc_id in sorted(rows):
        digest.update(f"{doc_id}\t{rows[doc_id]}\n".encode())
    return digest.hexdigest(), len(rows), set(rows)


def write_titles(path: Path, corpus: Path, limit: int | None = None) -> list[str]:
    """A JSONL of {_id, title} from a BEIR corpus (short texts: a big ingest that encodes fast)."""
    ids = []
    with open(corpus, encoding="utf-8") as src, open(path, "w", encoding="utf-8") as out:
        for line in src:
            d = json.loads(line)
            if not d.get("title", "").strip():
                continue
            out.write(json.dumps({"_id": d["_id"], "title": d["title"]}) + "\n")
            ids.append(d["_id"])
            if limit and len(ids) >= limit:
                break
    return ids


def report(test: str, **figures) -> None:
    """Append the measured figures of a fault test to $BRIDGE_RELIABILITY_REPORT (JSONL) when set:
    RELIABILITY.md is written from that file."""
    path = os.environ.get("BRIDGE_RELIABILITY_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"test": test, **figures}) + "\n")


def compare_vectors(client, index: str, reference: str, field: str = "splade") -> dict:
    """Per document: the same ids, and weights equal to ``reference``'s within float noise. Returns the ids
    of each side, the largest weight difference (a token missing on one side counts its weight) and how
    many documents are bit-identical (batch composition changes the last float bits)."""
    from opensearchpy.helpers import scan

    from bridge import passages

    def weights(value) -> dict:  # token weights; in passage mode keyed by (passage offset, token)
        if passages.is_stored(value):
            return {(offset, token): w for offset, part in passages.read(value) for token, w in part.items()}
        return value

    def load(name):
        return {h["_id"]: weights(h["_source"][field]) for h in scan(client, index=name, _source=[field], size=1000)}

    got, want = load(index), load(reference)
    worst, identical = 0.0, 0
    for doc_id in set(got) & set(want):
        a, b = got[doc_id], want[doc_id]
        identical += a == b
        for token in set(a) | set(b):
            worst = max(worst, abs(a.get(token, 0.0) - b.get(token, 0.0)))
    return {"ids": set(got), "reference_ids": set(want), "max_abs_diff": worst, "identical_docs": identical}

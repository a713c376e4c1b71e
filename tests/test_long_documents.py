"""Long documents on the real node: the only relevant passage lies beyond token 512; passages (the default) and
windows find it (passages naming where it starts), truncate does not."""
from __future__ import annotations

import json
import uuid

import pytest

from tests.conftest import SAMPLE, cli, load_jsonl

pytestmark = [pytest.mark.integration, pytest.mark.model]


def test_passage_beyond_512_tokens_is_found(node_url, client, encoder, tmp_path):
    docs = load_jsonl(SAMPLE)
    indexed, filler, target = docs[:100], docs[100:108], docs[150]
    prefix = "\n".join(d["title"] + ". " + d["text"] for d in filler)
    long_doc = {"_id": "long", "title": "", "text": prefix + "\n" + target["text"]}
    assert encoder.token_count([prefix])[0] == 512  # the prefix alone fills the model's window
    assert len(encoder._doc.tokenizer(prefix)["input_ids"]) > 1500
    src = tmp_path / "docs.jsonl"
    src.write_text("\n".join(json.dumps(d) for d in [*indexed, long_doc]) + "\n")
    names = {mode: f"long-{mode}-{uuid.uuid4().hex[:6]}" for mode in ("window", "truncate", "passages")}
    try:
        ranks = {}
        for mode, index in names.items():
            flags = [] if mode == "passages" else ["--long-documents", mode]  # passages: the default
            out = cli("--url", node_url, "ingest", index, str(src), "--model", "splade-tiny", *flags, cwd=tmp_path)
            assert out.returncode == 0, out.stderr[-2000:]
            stamp = client.indices.get_mapping(index=index)[index]["mappings"]["_meta"]["splade_bridge"]
            assert stamp["model"]["long_documents"].startswith(mode)
            hits = cli("--url", node_url, "search", index, target["title"], "--size", "10", "--format", "json",
                       "--explain")
            assert hits.returncode == 0, hits.stderr
            found = json.loads(hits.stdout)["hits"]
            ids = [h["_id"] for h in found]
            ranks[mode] = ids.index("long") + 1 if "long" in ids else None
            if mode == "passages":  # the passage that scored starts inside the target's text, past the prefix
                offset = found[0]["passage"]["offset"]
                assert len(prefix) - 2000 < offset <= len(long_doc["text"]) - len(target["text"]) // 2, offset
        assert ranks["window"] == 1 and ranks["passages"] == 1, ranks
        assert ranks["truncate"] is None, ranks  # not even in the top 10 when cut at 512 tokens
    finally:
        for index in names.values():
            client.indices.delete(index=index, ignore_unavailable=True)

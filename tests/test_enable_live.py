"""SPLADE on an index the bridge did not create (live): `index enable` changes nothing but the added fields,
`backfill` fills every vector by conditional partial updates while a writer updates, deletes and adds documents,
sliced backfills cover each document once, a killed backfill resumes, the Kafka `--write update` path keeps
vectors current, and search, status and reindex work on the enabled index."""
from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import uuid

import numpy as np
import pytest
import requests

from tests.conftest import CLI, REPO, cli, load_jsonl

pytestmark = [pytest.mark.integration, pytest.mark.model]

SETTINGS = {"index": {"number_of_shards": 2, "number_of_replicas": 0,
                      "analysis": {"analyzer": {"folded": {"type": "custom", "tokenizer": "standard",
                                                           "filter": ["lowercase"]}}}}}
PROPERTIES = {"title": {"type": "text", "analyzer": "folded"}, "body": {"type": "text"},
              "category": {"type": "keyword"}, "published": {"type": "date"}, "price": {"type": "float"},
              "authors": {"type": "nested", "properties": {"name": {"type": "keyword"}}}}
META = {"owner": "catalogue-team", "schema": 3}
CATEGORIES = ("biology", "medicine", "physics", "chemistry")


def user_doc(i: int, d: dict) -> dict:
    return {"title": d.get("title") or f"untitled {i}", "body": d["text"], "category": CATEGORIES[i % 4],
            "published": f"20{10 + i % 15:02d}-0{1 + i % 9}-1{i % 10}", "price": round(i * 0.25, 2),
            "authors": [{"name": f"author-{i % 37}"}]}


def user_index(url: str, scifact_dir, n: int) -> tuple[str, str, dict]:
    """An index made by plain HTTP, as another team would: its own mapping, 2 shards, an alias, other _meta
    keys, n documents loaded with _bulk. Returns (index, alias, {id: _source})."""
    name, alias = f"user-{uuid.uuid4().hex[:8]}", f"catalogue-{uuid.uuid4().hex[:8]}"
    body = {"settings": SETTINGS, "mappings": {"_meta": META, "properties": PROPERTIES}, "aliases": {alias: {}}}
    requests.put(f"{url}/{name}", json=body, timeout=60).raise_for_status()
    docs = {d["_id"]: user_doc(i, d) for i, d in enumerate(load_jsonl(scifact_dir / "corpus.jsonl", n))}
    lines = "".join(json.dumps({"index": {"_index": name, "_id": k}}) + "\n" + json.dumps(v) + "\n"
                    for k, v in docs.items())
    resp = requests.post(f"{url}/_bulk?refresh=true", data=lines.encode(), timeout=120,
                         headers={"content-type": "application/x-ndjson"})
    assert not resp.json()["errors"]
    return name, alias, docs


def sources(client, index: str) -> dict[str, dict]:
    from bridge.scan import read_documents

    return {d.id: d.source for d in read_documents(client, index)}


def fresh_features(encoder, stamp, texts: list[str]) -> list:
    """Each text's vector as the index stores it, decoded: token weights, or in passage mode (offset, token
    weights) per passage."""
    from bridge import passages
    from bridge.sparse import from_features, prune, quantize, to_features

    def features(v):
        return to_features(quantize(prune(v, stamp.pruning), stamp.quantization), encoder.vocab)

    if stamp.model.passages:
        return [[(offset, from_features(w)) for offset, w in passages.read(passages.stored(v, features))]
                for v in encoder.encode_documents(texts)]
    return [from_features(features(v)) for v in encoder.encode_documents(texts)]


def assert_vectors_current(client, encoder, index: str) -> int:
    """Every document's stored vector (each passage's, in passage mode) equals a fresh encoding of its stored
    text (max |delta| <= 1e-4); ``encoder`` is used for its model, in the index's long-document mode."""
    from bridge import passages
    from bridge.api import load_encoder, open_index
    from bridge.records import text_of
    from bridge.sparse import from_features

    stamp = open_index(client, index)
    encoder = load_encoder(encoder.config.model, stamp=stamp, threads=2)
    stored = sources(client, index)
    ids = sorted(stored)
    texts = [text_of(stored[i], stamp.text_fields) for i in ids]
    worst = 0.0
    for doc_id, want in zip(ids, fresh_features(encoder, stamp, texts)):
        assert stamp.vector_field in stored[doc_id], f"{doc_id} has no vector"
        value = stored[doc_id][stamp.vector_field]
        if stamp.model.passages:
            have = [(offset, from_features(w)) for offset, w in passages.read(value)]
            assert [o for o, _ in have] == [o for o, _ in want], doc_id
            pairs = [(h, w) for (_, h), (_, w) in zip(have, want)]
        else:
            pairs = [(from_features(value), want)]
        for have, w in pairs:
            assert set(have) == set(w), doc_id
            worst = max(worst, max(abs(have[t] - w[t]) for t in w))
    assert worst <= 1e-4, worst
    return len(ids)


def without(source: dict, *names: str) -> dict:
    return {k: v for k, v in source.items() if k not in names}


def test_enable_then_sliced_backfill_changes_nothing_else(node_url, client, encoder, scifact_dir):
    index, alias, docs = user_index(node_url, scifact_dir, 2000)
    try:
        before_mapping = client.indices.get_mapping(index=index)[index]["mappings"]
        before_settings = client.indices.get_settings(index=index)[index]["settings"]
        before_sources = sources(client, index)
        # refusals: one line, exit 2, nothing changed
        for args, words in ((("--text-field", "missing"), "does not exist"),
                            (("--text-field", "category"), "not text"),
                            (("--text-field", "title", "--vector-field", "price"), "type float"),
                            (("--text-field", "authors.name"), "nested")):
            proc = cli("index", "enable", alias, *args, "--model", "splade-tiny", "--url", node_url)
            assert proc.returncode == 2 and words in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, \
                proc.stderr
        assert client.indices.get_mapping(index=index)[index]["mappings"] == before_mapping
        dry = cli("index", "enable", alias, "--text-field", "title", "--text-field", "body", "--model", "splade-tiny",
                  "--dry-run", "--format", "json", "--url", node_url)
        assert dry.returncode == 0 and json.loads(dry.stdout)["changed"], dry.stderr
        assert client.indices.get_mapping(index=index)[index]["mappings"] == before_mapping
        proc = cli("index", "enable", alias, "--text-field", "title", "--text-field", "body", "--model", "splade-tiny",
                   "--url", node_url)
        assert proc.returncode == 0, proc.stderr
        after = client.indices.get_mapping(index=index)[index]["mappings"]
        passages = {"type": "nested", "properties": {"offset": {"type": "integer"},  # the default mode's layout
                                                     "weights": {"type": "rank_features"}}}
        added = {"splade": passages, "content_hash": {"type": "keyword"}}
        assert after["properties"] == {**before_mapping["properties"], **added}
        assert {k: v for k, v in after["_meta"].items() if k != "splade_bridge"} == META
        assert without(after, "_meta", "properties") == without(before_mapping, "_meta", "properties")
        assert client.indices.get_settings(index=index)[index]["settings"] == before_settings
        again = cli("index", "enable", alias, "--text-field", "title", "--text-field", "body", "--model", "splade-tiny",
                    "--url", node_url)
        assert again.returncode == 0 and "nothing changed" in again.stdout
        other = cli("index", "enable", alias, "--text-field", "title", "--text-field", "body", "--model", "splade-tiny",
                    "--truncate", "--url", node_url)
        assert other.returncode == 2 and "reindex" in other.stderr

        # two processes, two slices: every document read and updated exactly once between them
        runs = [subprocess.Popen([*CLI, "backfill", alias, "--slice", f"{i}/2", "--format", "json", "--url", node_url],
                                 cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (0, 1)]
        summaries = []
        for proc in runs:
            out, err = proc.communicate(timeout=600)
            assert proc.returncode == 0, err[-2000:]
            summaries.append(json.loads(out))
        assert sum(s["read"] for s in summaries) == 2000 and sum(s["updated"] for s in summaries) == 2000, summaries
        assert all(s["read"] > 500 for s in summaries), summaries
        assert_vectors_current(client, encoder, index)
        after_sources = sources(client, index)
        assert {k: without(v, "splade", "content_hash") for k, v in after_sources.items()} == before_sources
        assert before_sources == docs

        status = json.loads(cli("status", "--format", "json", "--url", node_url).stdout)
        row = next(r for r in status["indices"] if r["index"] == index)
        assert row["enabled"] and row["with_vector"] == 1.0 and row["model"] == "splade-tiny"
        rerun = cli("backfill", alias, "--format", "json", "--url", node_url)
        assert rerun.returncode == 0 and json.loads(rerun.stdout)["unchanged"] == 2000, rerun.stderr
        _search_with_user_filters(client, alias)
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)


def _search_with_user_filters(client, alias: str) -> None:
    from bridge import api

    searcher = api.open_searcher(client, alias)
    filters = ({"term": {"category": "medicine"}}, {"range": {"published": {"gte": "2015-01-01"}}})
    for mode in ("splade", "two-phase", "hybrid"):
        hits = searcher.search("vitamin D and bone fractures", api.SearchOptions(size=10, mode=mode, filters=filters,
                                                                                 native="never"))
        assert len(hits) == 10 and not hits.partial, mode
        for h in hits:
            assert h.source["category"] == "medicine" and h.source["published"] >= "2015", (mode, h.source)
    explained = searcher.search("vitamin D", api.SearchOptions(size=3, explain=True))
    assert all(h.explain for h in explained)


def test_backfill_under_a_writer_then_kafka_updates_keep_vectors_current(node_url, client, encoder, scifact_dir,
                                                                         broker):
    from tests.streams import drain_with_worker, new_topic, produce

    index, alias, docs = user_index(node_url, scifact_dir, 2000)
    extra = load_jsonl(scifact_dir / "corpus.jsonl", 2100)[2000:]
    ids = sorted(docs)
    updated, deleted = ids[::10][:200], ids[5::40][:50]
    titles: dict[str, str] = {}
    try:
        assert cli("index", "enable", alias, "--text-field", "title", "--text-field", "body", "--model", "splade-tiny",
                   "--url", node_url).returncode == 0
        backfill = subprocess.Popen([*CLI, "backfill", alias, "--window", "128", "--chunk-size", "64", "--format",
                                     "json", "--url", node_url], cwd=REPO, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        changes: list[tuple[str, bytes | None]] = []

        def writer() -> None:  # another team's pipeline, by plain HTTP, through the whole backfill
            session = requests.Session()
            ops = [("update", i) for i in updated] + [("delete", i) for i in deleted] + \
                  [("add", f"new-{n}") for n in range(len(extra))]
            for n, (op, doc_id) in enumerate(sorted(ops, key=lambda o: hash(o[1]) % 997)):
                if op == "update":
                    titles[doc_id] = f"revised {n}: {docs[doc_id]['title'][::-1]}"
                    r = session.post(f"{node_url}/{alias}/_update/{doc_id}", json={"doc": {"title": titles[doc_id]}})
                elif op == "delete":
                    r = session.delete(f"{node_url}/{alias}/_doc/{doc_id}")
                else:
                    new = user_doc(3000 + n, extra[int(doc_id.split("-")[1])])
                    titles[doc_id] = new["title"]
                    r = session.put(f"{node_url}/{alias}/_doc/{doc_id}", json=new)
                assert r.status_code < 300, r.text
                changes.append((doc_id, None if op == "delete" else json.dumps({"op": op}).encode()))
                time.sleep(0.04)

        thread = threading.Thread(target=writer)
        time.sleep(4)  # the backfill is loading its model and starting to read
        thread.start()
        out, err = backfill.communicate(timeout=600)
        thread.join()
        assert backfill.returncode == 0, err[-3000:]
        first = json.loads(out)
        print("first pass:", first)
        assert first["failed"] == 0

        # the same changes as a stream (ids as keys, a delete as a tombstone), applied by --write update
        topic = new_topic(2)
        produce(topic, changes)
        summary = drain_with_worker(node_url, alias, topic, f"g-{uuid.uuid4().hex[:6]}", "--write", "update",
                                    "--id-from-key", "--text-field", "title", "--text-field", "body")
        assert summary["dead_lettered"] == 0, summary
        client.indices.refresh(index=index)

        stored = sources(client, index)
        assert not set(deleted) & set(stored), "a deleted document exists again"
        assert len(stored) == 2000 - len(deleted) + len(extra)
        for doc_id, title in titles.items():
            assert stored[doc_id]["title"] == title, f"{doc_id}: a writer's change was reverted"
        for doc_id in set(ids) - set(updated) - set(deleted):
            assert without(stored[doc_id], "splade", "content_hash") == docs[doc_id]
        assert assert_vectors_current(client, encoder, index) == len(stored)
        second = json.loads(cli("backfill", alias, "--format", "json", "--url", node_url).stdout)
        assert second["updated"] == 0 and second["unchanged"] == len(stored), second
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)


def test_killed_backfill_resumes_and_reindex_keeps_the_user_mapping(node_url, client, scifact_dir):
    index, alias, docs = user_index(node_url, scifact_dir, 800)
    target = None
    try:
        assert cli("index", "enable", alias, "--text-field", "title", "--text-field", "body", "--model", "splade-tiny",
                   "--url", node_url).returncode == 0
        proc = subprocess.Popen([*CLI, "backfill", alias, "--window", "32", "--chunk-size", "32", "--concurrency", "1",
                                 "--url", node_url], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def done() -> int:
            client.indices.refresh(index=index)
            return client.count(index=index, body={"query": {"exists": {"field": "content_hash"}}})["count"]

        deadline = time.monotonic() + 300
        while done() < 150 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        time.sleep(1)
        finished = done()
        assert 150 <= finished < 800, finished
        rerun = cli("backfill", alias, "--format", "json", "--url", node_url)
        assert rerun.returncode == 0, rerun.stderr
        summary = json.loads(rerun.stdout)
        assert summary["unchanged"] == finished and summary["encoded"] == 800 - finished, (finished, summary)
        assert done() == 800

        # a reindex of the enabled index keeps its whole mapping and settings, the user's fields included
        proc = cli("reindex", "--source", alias, "--alias", f"{alias}-live", "--format", "json", "--url", node_url)
        assert proc.returncode == 0, proc.stderr
        target = json.loads(proc.stdout)["plan"]["target"]
        mapping = client.indices.get_mapping(index=target)[target]["mappings"]
        assert {k: mapping["properties"][k] for k in PROPERTIES} == PROPERTIES
        assert {k: v for k, v in mapping["_meta"].items() if k != "splade_bridge"} == META
        assert mapping["_meta"]["splade_bridge"]["enabled"] is True
        settings = client.indices.get_settings(index=target)[target]["settings"]["index"]
        assert settings["analysis"] == SETTINGS["index"]["analysis"] and settings["number_of_shards"] == "2"
        copied = sources(client, target)
        assert {k: without(v, "splade", "content_hash") for k, v in copied.items()} == docs
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
        if target:
            client.indices.delete(index=target, ignore_unavailable=True)

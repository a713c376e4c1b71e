"""Passage mode on every live engine, over a whole long-document collection (MEDLINE's abstracts concatenated
by benchmarks/long_collection.py: 233 documents, three in four over 400 words): the cluster's top-10 scores equal
the exact maximum over each document's stored passages of the SPLADE dot product, one- and two-phase, and that
maximum is the one the encoder's own passage vectors give."""
from __future__ import annotations

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest

from bridge import evaluation, records
from bridge.config import EncoderConfig
from bridge.fusion import Hybrid
from bridge.searcher import Searcher, SearchOptions
from bridge.sparse import prune
from tests.conftest import DATASETS, unavailable
from tests.engines import ENGINES, NEURAL, index_collection

pytestmark = [pytest.mark.integration, pytest.mark.model]

TOLERANCE = 0.005  # Lucene keeps 9 significant bits per stored value
INDEX = "test-passages-parity"
REPO = Path(__file__).resolve().parents[1]


def _builder():
    spec = importlib.util.spec_from_file_location("long_collection", REPO / "benchmarks" / "long_collection.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def long_medline(tmp_path_factory) -> Path:
    source = DATASETS / "medline"
    if not (source / "corpus.jsonl").exists():
        unavailable(f"{source} is missing: CI needs ../shared/datasets/medline")
    out = tmp_path_factory.mktemp("medline-long")
    shape = _builder().build(source, out)
    assert shape["documents"] == 233 and shape["over_400_words"] > 0.7
    return out


@pytest.fixture(scope="module")
def passage_encoder(tiny_model):
    from bridge.encoder import SpladeEncoder

    class Caching(SpladeEncoder):  # every engine ingests the same texts: encode them once
        cache: dict = {}

        def encode_documents(self, texts):
            todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
            self.cache.update(zip(todo, super().encode_documents(todo)))
            return [self.cache[t] for t in texts]

    return Caching(EncoderConfig(model="splade-tiny", threads=2, long_documents="passages"))


@pytest.fixture(scope="module", params=[*ENGINES, NEURAL])
def engine(request, passage_encoder, long_medline):
    client, summary = index_collection(request.param, INDEX, passage_encoder, long_medline / "corpus.jsonl")
    assert (summary.indexed, summary.failed) == (233, 0)
    # on the neural-search node the queries go out as neural_sparse, inside the nested query as well
    yield request.param, client, ("neural_sparse" if request.param == NEURAL else None)
    client.indices.delete(index=INDEX, ignore_unavailable=True)


@pytest.mark.parametrize("mode", ["splade", "two-phase"])
def test_scores_are_the_best_passage_dot_product(engine, passage_encoder, long_medline, mode):
    name, client, form = engine
    collection = evaluation.load_beir(long_medline)
    searcher = Searcher(client, passage_encoder, INDEX)
    vectors = evaluation.StoredVectors(client, INDEX, searcher.field, searcher.scale, in_passages=True)
    assert len(vectors.ids) == 233 and len(vectors._owner) > 400  # more passages than documents
    texts = {d["_id"]: d["text"] for d in records.read_jsonl(open(long_medline / "corpus.jsonl", "rb"))}
    opts = SearchOptions(size=10, source=False, mode=mode, form=form)
    swaps = 0
    for qid, text in collection.queries.items():
        _, used, _ = searcher.build(text, replace(opts, mode="splade"))
        exact = dict(zip(vectors.ids, vectors.scores(used).tolist()))
        ranked = sorted(exact.values(), reverse=True)[:10]
        hits = searcher.search(text, opts)
        assert len(hits) == min(10, sum(s > 0 for s in exact.values()))
        for rank, hit in enumerate(hits):
            assert hit.score == pytest.approx(exact[hit.id], rel=TOLERANCE), (name, qid, hit.id)
            if hit.score != pytest.approx(ranked[rank], rel=TOLERANCE):
                swaps += 1
        # the stored maximum is the encoder's: the best of the top hit's own passage vectors, pruned as stored
        top = hits[0]
        parts = passage_encoder.encode_documents([texts[top.id]])[0].passages
        own = max(sum(w * weights.get(t, 0.0) for t, w in used.items())
                  for weights in (prune(p.vector, searcher.stamp.pruning).to_tokens(passage_encoder.vocab)
                                  for p in parts))
        assert top.score == pytest.approx(own, rel=TOLERANCE), (name, qid)
    assert swaps <= 2 * len(collection.queries) // 10, swaps  # near-ties only
    print(f"\n{name} passages {mode}: {len(collection.queries)} queries, {swaps} near-tie swaps")


def test_status_counts_documents_not_passages(engine):
    """The engine's own count of a passage index (_cat's docs.count) includes every nested passage; status says
    how many documents it holds."""
    from bridge import api

    name, client, _ = engine
    row = next(r for r in api.cluster_status(client)["indices"] if r["index"] == INDEX)
    assert row["documents"] == 233 and int(row["docs.count"]) > 400


def test_hybrid_fuses_bm25_with_the_best_passage_scores(engine, passage_encoder, long_medline):
    """Hybrid on a passage index (client-side: the plugin's hybrid query is not used for passages) is the RRF of
    the BM25 hits and the passage-scored SPLADE hits, each fetched alone at the fusion depth."""
    name, client, form = engine
    searcher = Searcher(client, passage_encoder, INDEX)
    depth = 50
    opts = SearchOptions(size=10, source=False, mode="hybrid", form=form, hybrid=Hybrid(method="rrf", depth=depth))
    for text in list(evaluation.load_beir(long_medline).queries.values())[:10]:
        fused = searcher.search(text, opts)
        assert fused.fusion == "client-side rrf" and len(fused) == 10, (name, fused.fusion)
        want: dict[str, float] = {}
        for mode in ("bm25", "splade"):
            for rank, hit in enumerate(searcher.search(text, replace(opts, mode=mode, size=depth)), 1):
                want[hit.id] = want.get(hit.id, 0.0) + 1 / (60 + rank)
        best = sorted(want.values(), reverse=True)[:10]
        assert [h.score for h in fused] == pytest.approx(best, rel=1e-9), (name, text)
        assert all(h.score == pytest.approx(want[h.id], rel=1e-9) for h in fused), (name, text)


def test_explain_names_the_passage_that_scored(engine, passage_encoder, long_medline):
    name, client, _ = engine
    searcher = Searcher(client, passage_encoder, INDEX)
    texts = {d["_id"]: d["text"] for d in records.read_jsonl(open(long_medline / "corpus.jsonl", "rb"))}
    hits = searcher.search("cystic fibrosis treatment with antibiotics", SearchOptions(size=5, explain=True))
    for hit in hits:
        assert hit.passage is not None and 0 <= hit.passage < len(texts[hit.id])
        assert hit.splade == pytest.approx(hit.score, rel=TOLERANCE)
        assert hit.as_dict()["passage"] == {"offset": hit.passage}
    assert any(h.passage > 0 for h in hits)  # some best passage is not the first


def test_enable_backfill_and_reindex_keep_passages(node_url, client, scifact_dir, tmp_path):
    """An index another team made, enabled in passage mode: the backfill writes each document's passages by
    partial updates, a long document's late passage is found and named, and a reindex keeps the mode."""
    import json
    import uuid

    import requests

    from tests.conftest import cli, load_jsonl

    docs = load_jsonl(scifact_dir / "corpus.jsonl", 40)
    filler, target = docs[:8], docs[30]
    long_text = "\n".join(d["title"] + ". " + d["text"] for d in filler) + "\n" + target["text"]
    rows = {d["_id"]: {"title": d["title"], "body": d["text"]} for d in docs[8:30]}
    rows["long"] = {"title": "", "body": long_text}
    name, alias = f"user-{uuid.uuid4().hex[:8]}", f"pass-{uuid.uuid4().hex[:8]}"
    requests.put(f"{node_url}/{name}", json={"mappings": {"properties": {"title": {"type": "text"},
                                                                         "body": {"type": "text"}}}},
                 timeout=60).raise_for_status()
    lines = "".join(json.dumps({"index": {"_index": name, "_id": k}}) + "\n" + json.dumps(v) + "\n"
                    for k, v in rows.items())
    requests.post(f"{node_url}/_bulk?refresh=true", data=lines.encode(), timeout=120,
                  headers={"content-type": "application/x-ndjson"}).raise_for_status()
    made = []
    try:
        enabled = cli("index", "enable", name, "--text-field", "title", "--text-field", "body", "--long-documents",
                      "passages", "--model", "splade-tiny", "--url", node_url)
        assert enabled.returncode == 0, enabled.stderr
        field = client.indices.get_mapping(index=name)[name]["mappings"]["properties"]["splade"]
        assert field["type"] == "nested" and field["properties"]["weights"]["type"] == "rank_features"
        backfill = cli("backfill", name, "--format", "json", "--url", node_url)
        assert backfill.returncode == 0 and json.loads(backfill.stdout)["encoded"] == len(rows), backfill.stderr
        stored = client.get(index=name, id="long")["_source"]["splade"]
        assert len(stored) >= 3 and stored[0]["offset"] == 0  # one nested passage per window
        for index in (name, None):
            if index is None:  # the same after a reindex behind an alias
                proc = cli("reindex", "--source", name, "--alias", alias, "--format", "json", "--url", node_url)
                assert proc.returncode == 0, proc.stderr
                made.append(json.loads(proc.stdout)["plan"]["target"])
                stamp = client.indices.get_mapping(index=made[-1])[made[-1]]["mappings"]["_meta"]["splade_bridge"]
                assert stamp["model"]["long_documents"].startswith("passages:")
                index = alias
            found = cli("search", index, target["title"], "--explain", "--format", "json", "--url", node_url)
            hits = json.loads(found.stdout)["hits"]
            assert hits[0]["_id"] == "long" and hits[0]["passage"]["offset"] > len(long_text) // 2, hits[0]
        # a reindex that changes the mode re-encodes every document into the other field layout
        proc = cli("reindex", "--source", alias, "--alias", alias, "--long-documents", "window", "--format", "json",
                   "--url", node_url)
        assert proc.returncode == 0, proc.stderr
        made.append(json.loads(proc.stdout)["plan"]["target"])
        mapping_ = client.indices.get_mapping(index=made[-1])[made[-1]]["mappings"]
        assert mapping_["properties"]["splade"] == {"type": "rank_features"}
        assert mapping_["_meta"]["splade_bridge"]["model"]["long_documents"].startswith("window:")
        found = cli("search", alias, target["title"], "--explain", "--format", "json", "--url", node_url)
        top = json.loads(found.stdout)["hits"][0]
        assert top["_id"] == "long" and "passage" not in top
    finally:
        for index in (name, *made):
            client.indices.delete(index=index, ignore_unavailable=True)

"""Ingest -> search against the real node with the offline SPLADE-tiny."""
import json
from dataclasses import replace

import numpy as np
import pytest

from bridge import indexing, mapping
from bridge.config import DEFAULT_DOC_TOP_K, DEFAULT_QUERY_TOP_K, PruneConfig, QuantConfig
from bridge.errors import ModelMismatch, QueryError
from bridge.searcher import Searcher, SearchOptions, plan_query
from bridge.sparse import KeyCodec, prune
from bridge.types import SparseVector
from bridge.stamp import IndexStamp
from tests.conftest import SAMPLE, cli, load_jsonl

pytestmark = [pytest.mark.integration, pytest.mark.model]


def _create(client, name, encoder, **kw):
    body = mapping.build(mapping.IndexConfig(**kw), encoder.stamp)
    client.indices.create(index=name, body=body)
    return IndexStamp.from_meta(body["mappings"]["_meta"][mapping.META_KEY])


def _ingest(client, encoder, name, records, meta, **kw):
    return indexing.run(client, encoder, name, iter(records), meta, indexing.IngestConfig(window=32, **kw))


@pytest.fixture(scope="module")
def sample_index(client, encoder):
    name = "test-sample-live"
    client.indices.delete(index=name, ignore_unavailable=True)
    meta = _create(client, name, encoder)
    summary = _ingest(client, encoder, name, load_jsonl(SAMPLE), meta)
    assert (summary.read, summary.encoded, summary.indexed, summary.failed) == (200, 200, 200, 0)
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


def test_cluster_scores_equal_splade_dot_products(client, encoder, sample_index):
    """By default the index keeps each document's DEFAULT_DOC_TOP_K largest weights and a search the query's
    DEFAULT_QUERY_TOP_K largest (the pruning defaults): the score is the dot product of those pruned vectors."""
    docs = {d["_id"]: d for d in load_jsonl(SAMPLE)}
    searcher = Searcher(client, encoder, sample_index)
    assert searcher.stamp.pruning == PruneConfig(top_k=DEFAULT_DOC_TOP_K)
    assert SearchOptions().query_prune == PruneConfig(top_k=DEFAULT_QUERY_TOP_K)
    pruned = 0
    long_query = ("does vitamin D supplementation lower the risk of hip fractures and falls in elderly women living in "
                  "nursing homes with low bone mineral density")  # expands to more terms than the query budget
    for text in ("vitamin D and bone health", "stem cells differentiation", "mortality in elderly patients",
                 long_query):
        hits = searcher.search(text, SearchOptions(size=5))
        assert len(hits) == 5
        full = encoder.encode_query(text)
        q = prune(full, PruneConfig(top_k=DEFAULT_QUERY_TOP_K))
        pruned += len(q) < len(full)
        assert len(q) == min(DEFAULT_QUERY_TOP_K, len(full))
        assert len(searcher.expand(text, SearchOptions().query_prune)) == len(q)
        for h in hits:
            d = docs[h.id]
            vector = encoder.encode_documents([d["title"] + "\n" + d["text"]])[0]
            exact = q.dot(prune(vector, PruneConfig(top_k=DEFAULT_DOC_TOP_K)))
            assert h.score == pytest.approx(exact, rel=5e-3)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert pruned  # the query budget bites on these queries
    stored = client.search(index=sample_index, body={"size": 200, "_source": [searcher.field]})["hits"]["hits"]
    lengths = [len(h["_source"][searcher.field]) for h in stored]
    assert lengths.count(DEFAULT_DOC_TOP_K) >= 10  # and the document budget: a quarter of these have more terms


def test_two_phase_hits_carry_exact_splade_scores(client, encoder, sample_index):
    """The first phase finds hits with the heavy tokens only; the rescore adds the rest, so every hit in the
    window ends with the full SPLADE dot product (same tolerance as the parity test)."""
    from bridge.evaluation import StoredVectors

    searcher = Searcher(client, encoder, sample_index)
    vectors = StoredVectors(client, sample_index, searcher.field, searcher.scale)
    opts = SearchOptions(size=10, source=False, mode="two-phase")
    body, used, _ = searcher.build("vitamin D and bone health", opts)
    assert body["rescore"]["window_size"] == 100 and body["rescore"]["query"]["score_mode"] == "total"
    first = body["query"]["bool"]["should"]
    assert 0 < len(first) < len(used)  # only the heavy tokens search
    for text in ("vitamin D and bone health", "stem cells differentiation", "mortality in elderly patients",
                 "antibiotic resistance in hospitals"):
        _, used, _ = searcher.build(text, opts)
        exact = dict(zip(vectors.ids, vectors.scores(used).tolist()))
        hits = searcher.search(text, opts)
        assert len(hits) == 10
        for h in hits:
            assert h.score == pytest.approx(exact[h.id], rel=5e-3)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        full = [h.id for h in searcher.search(text, SearchOptions(size=10, source=False))]
        assert len(set(full) & {h.id for h in hits}) >= 8  # the window holds (nearly) the same top 10


def test_hybrid_fuses_both_sides_with_their_best_hits_and_filters_both(client, encoder, sample_index):
    from bridge.fusion import fuse_scores
    from bridge.query import match_query

    searcher = Searcher(client, encoder, sample_index)
    for text in ("vitamin D and bone health", "stem cells differentiation", "mortality in elderly patients"):
        hits = searcher.search(text, SearchOptions(size=10, mode="hybrid", explain=True))
        assert hits.fusion == "client-side norm" and len(hits) == 10
        bm25 = {h["_id"]: h["_score"] for h in client.search(
            index=sample_index, body=match_query(text, ["title", "text"], size=100))["hits"]["hits"]}
        splade = {h.id: h.score for h in searcher.search(text, SearchOptions(size=100, source=False))}
        expected = fuse_scores(bm25, splade, "norm", 10)
        assert [h.id for h in hits] == list(expected)  # the same fusion as eval's hybrid
        assert [h.score for h in hits] == pytest.approx(list(expected.values()))
        best_bm25, best_splade = max(bm25, key=bm25.get), max(splade, key=splade.get)
        assert {best_bm25, best_splade} <= {h.id for h in hits}  # the best hit of each side is kept
        for h in hits:  # --explain shows both contributions
            parts = dict(h.explain[:2])
            assert parts == {"bm25": bm25.get(h.id, 0.0), "splade": pytest.approx(splade.get(h.id, 0.0))}
    ids = [d["_id"] for d in load_jsonl(SAMPLE)][:40]
    only = SearchOptions(size=10, mode="hybrid", filters=({"ids": {"values": ids}},))
    assert {h.id for h in searcher.search("vitamin D and bone health", only)} <= set(ids)  # both sides filtered
    norm = searcher.search("vitamin D and bone health", replace(only, hybrid=replace(only.hybrid, method="norm")))
    assert norm.fusion == "client-side norm" and all(0 < h.score <= 2 for h in norm)


def test_explain_lists_top_contributions_that_sum_to_the_score(client, encoder, sample_index):
    hits = Searcher(client, encoder, sample_index).search("vitamin D deficiency",
                                                          SearchOptions(size=3, explain=True, explain_top=10000))
    for h in hits:
        assert h.explain and h.explain[0][1] >= h.explain[-1][1]
        assert sum(c for _, c in h.explain) == pytest.approx(h.score, rel=5e-3)
        assert "splade" not in h.source


def test_filters_restrict_without_changing_scores(client, encoder, sample_index):
    searcher = Searcher(client, encoder, sample_index)
    plain = searcher.search("cancer", SearchOptions(size=20))
    keep = plain[3].id
    filtered = searcher.search("cancer", SearchOptions(size=20, filters=({"ids": {"values": [keep]}},)))
    assert [h.id for h in filtered] == [keep]
    assert filtered[0].score == pytest.approx(plain[3].score, rel=1e-6)


def test_neural_sparse_needs_the_plugin_and_is_built_for_the_same_tokens(client, encoder, sample_index):
    # the test node has no neural-search plugin: the form is refused before any search is sent
    plugins = {row["component"] for row in client.cat.plugins(format="json")}
    assert "opensearch-neural-search" not in plugins
    searcher = Searcher(client, encoder, sample_index)
    assert "neural_sparse" not in searcher.capabilities["query_forms"]
    with pytest.raises(QueryError, match="'neural_sparse' is not supported"):
        searcher.build("vitamin D", SearchOptions(form="neural_sparse"))
    tokens = searcher.expand("vitamin D")
    body, used, factor = plan_query(tokens, searcher.field, SearchOptions(form="neural_sparse"))
    query_tokens = body["query"]["neural_sparse"]["splade"]["query_tokens"]
    assert factor == 1.0 and set(query_tokens) == {KeyCodec.encode(t) for t in used}
    assert all(0 < w <= 64 for w in query_tokens.values())


def test_model_stamp_mismatch_is_refused(client, encoder, index_name):
    other = replace(encoder.stamp, model="someone/else", revision="0123456789abcdef")
    body = mapping.build(mapping.IndexConfig(), other)
    client.indices.create(index=index_name, body=body)
    with pytest.raises(ModelMismatch, match="someone/else"):
        Searcher(client, encoder, index_name)
    Searcher(client, encoder, index_name, allow_model_mismatch=True)  # explicit override


def test_field_that_is_not_rank_features_is_refused(client, encoder, index_name):
    body = mapping.build(mapping.IndexConfig(), encoder.stamp)
    body["mappings"]["properties"]["splade"] = {"type": "object"}
    client.indices.create(index=index_name, body=body)
    with pytest.raises(ValueError, match="not rank_features"):
        Searcher(client, encoder, index_name)


class VocabEncoder:
    """Wraps the real encoder but returns fixed vectors over awkward vocabulary entries."""

    def __init__(self, real, vectors):
        self.real, self.vectors, self.vocab, self.stamp = real, vectors, real.vocab, real.stamp

    def encode_documents(self, texts):
        return [self.vectors[t] for t in texts]

    def encode_query(self, text):
        return self.vectors[text]

    def tokens(self, vec):
        return vec.to_tokens(self.vocab)


def test_awkward_tokens_round_trip_ingest_to_query(client, encoder, index_name):
    """Tokens with '.', '#', '[unused0]' are stored and queried under the same escaped key."""
    vocab = encoder.vocab
    ids = [vocab.index(t) for t in (".", "##.", "#", "[unused0]", "...")]
    assert all(i >= 0 for i in ids)
    vec = SparseVector(np.array(sorted(ids)), np.array([1.0, 2.0, 3.0, 4.0, 5.0], dtype=np.float32))
    fake = VocabEncoder(encoder, {"doc": vec, "q": vec})
    meta = _create(client, index_name, encoder)
    summary = _ingest(client, fake, index_name, [{"_id": "odd", "text": "doc"}], meta)
    assert summary.indexed == 1
    stored = client.get(index=index_name, id="odd")["_source"]["splade"]
    assert set(stored) == {KeyCodec.encode(vocab[i]) for i in ids}
    hits = Searcher(client, fake, index_name).search("q", SearchOptions(explain=True))
    assert [h.id for h in hits] == ["odd"]
    assert hits[0].score == pytest.approx(1 + 4 + 9 + 16 + 25, rel=5e-3)
    assert {t for t, _ in hits[0].explain} == {vocab[i] for i in ids}


def test_int_quantization_and_pruning_keep_scores_on_splade_scale(client, encoder, index_name):
    meta = _create(client, index_name, encoder, prune=PruneConfig(top_k=64), quant=QuantConfig(kind="int", scale=100))
    docs = load_jsonl(SAMPLE, 30)
    _ingest(client, encoder, index_name, docs, meta)
    stored = client.get(index=index_name, id=docs[0]["_id"])["_source"]["splade"]
    assert len(stored) <= 64 and all(float(v).is_integer() for v in stored.values())
    hits = Searcher(client, encoder, index_name).search(docs[0]["title"], SearchOptions(size=1, explain=True,
                                                                                        explain_top=1000))
    assert hits[0].id == docs[0]["_id"]
    assert hits[0].score == pytest.approx(sum(c for _, c in hits[0].explain), rel=1e-2)


def test_cli_ingest_search_expand_json(node_url, index_name, tmp_path):
    lines = [json.dumps(d) for d in load_jsonl(SAMPLE, 20)] + ["{broken", json.dumps({"_id": "e", "text": ""})]
    src = tmp_path / "docs.jsonl"
    src.write_text("\n".join(lines) + "\n")
    dead = tmp_path / "dead.jsonl"
    proc = cli("--url", node_url, "ingest", index_name, str(src), "--model", "splade-tiny",
                "--dead-letter", str(dead), "--format", "json")
    assert proc.returncode == 1, proc.stderr  # partial failure
    summary = json.loads(proc.stdout)
    assert (summary["read"], summary["encoded"], summary["indexed"], summary["failed"]) == (22, 20, 20, 2)
    assert isinstance(summary["docs_per_s"], float) and summary["docs_per_s"] > 0
    rejected = [json.loads(x) for x in dead.read_text().splitlines()]
    assert [r.get("line") for r in rejected] == [21, 22]
    assert "malformed JSON" in rejected[0]["reason"] and rejected[1]["id"] == "e"

    proc = cli("--url", node_url, "search", index_name, "vitamin D", "--size", "3", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    hits = answer["hits"]
    assert len(hits) == 3 and all(set(h) >= {"_id", "_score"} for h in hits)
    assert answer["partial"] is False and answer["index"] == index_name and answer["model"]["model"] == "splade-tiny"
    assert hits[0]["_score"] >= hits[1]["_score"] >= hits[2]["_score"] > 0

    proc = cli("expand", "garlic powder", "--model", "splade-tiny", "--format", "json")
    tokens = json.loads(proc.stdout)["tokens"]
    assert "garlic" in tokens and all(w > 0 for w in tokens.values())


def test_cli_errors_are_one_line(index_name):
    proc = cli("--url", "http://127.0.0.1:9", "search", index_name, "x")
    assert proc.returncode == 2
    assert "cannot reach the cluster" in proc.stderr and "Traceback" not in proc.stderr


class NoForward:
    """The real encoder's tokenizer and stamp, but any model forward fails the test."""

    def __init__(self, real):
        self.real, self.stamp, self.vocab = real, real.stamp, real.vocab
        self.query_tokenizer, self.special_tokens = real.query_tokenizer, real.special_tokens

    def encode_query(self, text):
        raise AssertionError("inference-free mode ran the model")

    def tokens(self, vec):
        return self.real.tokens(vec)


def test_inference_free_mode_uses_the_idf_table_and_no_model(client, encoder, sample_index):
    from bridge import idf

    out = idf.build(client, sample_index, "splade")
    assert out["documents"] == 200 and out["tokens"] > 1000
    table = idf.load(client, sample_index)
    assert min(table.values()) < table["vitamin"] < max(table.values())  # rare tokens weigh more
    searcher = Searcher(client, NoForward(encoder), sample_index, inference_free=True)
    weights = searcher.expand("Vitamin D and bone fractures")
    assert weights == {t: table[t] for t in ("vitamin", "d", "and", "bone", "fractures") if t in table}
    hits = searcher.search("Vitamin D and bone fractures", SearchOptions(size=5, explain=True))
    assert hits and hits[0].explain
    assert all(t in weights for t, _ in hits[0].explain)
    client.indices.delete(index=idf.side_index(sample_index))
    with pytest.raises(ValueError, match="idf build"):
        Searcher(client, encoder, sample_index, inference_free=True)


def test_bulk_load_pauses_refresh_and_restores_it(client, encoder, index_name):
    meta = _create(client, index_name, encoder)
    client.indices.put_settings(index=index_name, body={"index": {"refresh_interval": "7s"}})
    seen = []

    def progress(n):
        if not seen:
            seen.append(client.indices.get_settings(index=index_name)[index_name]["settings"]["index"]
                        ["refresh_interval"])

    indexing.run(client, encoder, index_name, iter(load_jsonl(SAMPLE, 10)), meta,
               indexing.IngestConfig(bulk_load=True), progress=progress)
    assert seen == ["-1"]
    settings = client.indices.get_settings(index=index_name)[index_name]["settings"]["index"]
    assert settings["refresh_interval"] == "7s" and client.count(index=index_name)["count"] == 10


def test_precision_is_stamped_and_queries_follow_it(client, node_url, index_name, tmp_path):
    """`ingest --precision int8` stamps the index; `search` without --precision encodes the query the same way
    (from the stamp), and `search --precision fp32` is refused, naming the difference."""
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in load_jsonl(SAMPLE, 20)))
    env = {"BRIDGE_URL": node_url, "HF_HUB_OFFLINE": "1"}
    done = cli("ingest", index_name, str(corpus), "--model", "splade-tiny", "--precision", "int8", env=env)
    assert done.returncode == 0, done.stderr
    _, stamp = IndexStamp.from_mapping(client.indices.get_mapping(index=index_name))
    assert (stamp.model.precision, stamp.model.backend) == ("int8", "onnx")
    found = cli("search", index_name, "stem cells", "--format", "json", env=env)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["hits"]
    refused = cli("search", index_name, "stem cells", "--precision", "fp32", env=env)
    assert refused.returncode == 2
    assert "precision: index 'int8' vs encoder 'fp32'" in refused.stderr

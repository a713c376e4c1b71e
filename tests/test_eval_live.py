"""``splade-bridge eval`` end to end on a small SciFact slice, checked against independent computations."""
import json
import math

import pytest

from bridge.config import DEFAULT_DOC_TOP_K, DEFAULT_QUERY_TOP_K, PruneConfig
from bridge.sparse import prune
from tests.conftest import cli, load_jsonl

pytestmark = [pytest.mark.integration, pytest.mark.model]


@pytest.fixture(scope="module")
def scifact_slice(tmp_path_factory, scifact_dir):
    """20 judged queries, their relevant documents, and 200 other documents, in BEIR layout."""
    out = tmp_path_factory.mktemp("slice")
    rows = [line.rstrip("\n").split("\t") for line in open(scifact_dir / "qrels" / "test.tsv")][1:]
    qids = sorted({q for q, _, _ in rows})[:20]
    qrels = [r for r in rows if r[0] in qids]
    wanted = {d for _, d, _ in qrels}
    corpus = [d for d in load_jsonl(scifact_dir / "corpus.jsonl") if d["_id"] in wanted]
    corpus += [d for d in load_jsonl(scifact_dir / "corpus.jsonl", 400) if d["_id"] not in wanted][:200]
    (out / "qrels").mkdir()
    (out / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join("\t".join(r) + "\n" for r in qrels))
    (out / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    queries = [q for q in load_jsonl(scifact_dir / "queries.jsonl") if q["_id"] in qids]
    (out / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    return out


def _read_trec(path):
    run = {}
    for line in open(path):
        qid, _, did, rank, score, _ = line.split()
        run.setdefault(qid, []).append((int(rank), did, float(score)))
    return {q: [d for _, d, _ in sorted(v)] for q, v in run.items()}


def _ndcg10(ranking, judged):
    dcg = sum((2 ** judged.get(d, 0) - 1) / math.log2(i + 2) for i, d in enumerate(ranking[:10]))
    ideal = sorted(judged.values(), reverse=True)[:10]
    idcg = sum((2 ** g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def test_eval_cli_metrics_match_an_independent_computation(node_url, scifact_slice, tmp_path, client, encoder):
    index = "test-eval-slice"
    client.indices.delete(index=index, ignore_unavailable=True)
    runs = tmp_path / "runs"
    proc = cli("--url", node_url, "eval", "--dataset", str(scifact_slice), "--index", index, "--ingest", "--model",
               "splade-tiny", "--metrics", "nDCG@10,MRR@10", "--runs-dir", str(runs), "--format", "json",
               "--modes", "bm25,splade,two_phase,hybrid,exact", timeout=900)
    try:
        assert proc.returncode == 0, proc.stderr[-3000:]
        out = json.loads(proc.stdout)
        assert out["queries"] == 20
        assert "'two_phase' is now called 'two-phase'" in proc.stderr  # the old spelling, still accepted
        qrels = {}
        for line in open(scifact_slice / "qrels" / "test.tsv").readlines()[1:]:
            q, d, s = line.split()
            qrels.setdefault(q, {})[d] = int(s)
        for mode in ("bm25", "splade", "two_phase", "hybrid", "exact"):  # results keep the names asked
            run = _read_trec(runs / f"{mode}.trec")
            mine = sum(_ndcg10(run.get(q, []), qrels[q]) for q in qrels) / len(qrels)
            assert out["results"][mode]["nDCG@10"] == pytest.approx(mine, abs=1e-6), mode
        # exact mode is the in-memory dot product: recompute one query's top documents from scratch, with the
        # pruning defaults (the query's DEFAULT_QUERY_TOP_K largest weights, each document's DEFAULT_DOC_TOP_K largest
        # per window)
        docs = {d["_id"]: d for d in load_jsonl(scifact_slice / "corpus.jsonl")}
        qid, text = next((q["_id"], q["text"]) for q in load_jsonl(scifact_slice / "queries.jsonl"))
        qv = prune(encoder.encode_query(text), PruneConfig(top_k=DEFAULT_QUERY_TOP_K))
        ids = list(docs)
        vecs = [prune(v, PruneConfig(top_k=DEFAULT_DOC_TOP_K))
                for v in encoder.encode_documents([docs[i]["title"] + "\n" + docs[i]["text"] for i in ids])]
        scores = sorted(((qv.dot(v), i) for v, i in zip(vecs, ids)), reverse=True)[:5]
        assert _read_trec(runs / "exact.trec")[qid][:5] == [i for _, i in scores]
        assert out["results"]["splade"]["nDCG@10"] >= 0.995 * out["results"]["exact"]["nDCG@10"]
        assert out["results"]["two_phase"]["nDCG@10"] >= 0.995 * out["results"]["splade"]["nDCG@10"]
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)

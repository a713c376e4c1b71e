"""Build a long-document BEIR collection from a short one: each new document is 1 to 8 documents of the source
concatenated in a seeded random order (so a relevant abstract sits anywhere inside, and lengths vary as a real
corpus's do), and the qrels follow each judged document into the one that contains it (its grade: the highest
of those inside). The queries are the source's.

    python benchmarks/long_collection.py --dataset ../shared/datasets/scifact --out runs/scifact-long

then `splade-bridge eval --dataset runs/scifact-long --index scifact-long --ingest ...` for each long-document
mode (EVALUATION.md, "Long documents"). Prints the collection's shape: documents, words, the share over 400
words (about 512 tokens) and where inside their documents the judged ones sit.
"""
from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import statistics
from pathlib import Path


def build(dataset: Path, out: Path, seed: int = 0, smallest: int = 1, largest: int = 8, split: str = "test") -> dict:
    docs = [json.loads(line) for line in open(dataset / "corpus.jsonl", encoding="utf-8") if line.strip()]
    rng = random.Random(seed)
    rng.shuffle(docs)
    container: dict[str, tuple[str, int, int]] = {}  # source id -> (long id, position, members)
    long_docs = []
    i = 0
    while i < len(docs):
        members = docs[i:i + rng.randint(smallest, largest)]
        i += len(members)
        long_id = f"L{len(long_docs)}"
        for position, d in enumerate(members):
            container[str(d["_id"])] = (long_id, position, len(members))
        text = "\n\n".join(f"{d.get('title', '')}\n{d.get('text', '')}".strip() for d in members)
        long_docs.append({"_id": long_id, "title": "", "text": text})
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    with open(out / "corpus.jsonl", "w", encoding="utf-8") as f:
        f.writelines(json.dumps(d, ensure_ascii=False) + "\n" for d in long_docs)
    shutil.copyfile(dataset / "queries.jsonl", out / "queries.jsonl")
    grades: dict[tuple[str, str], int] = {}
    places = []
    with open(dataset / "qrels" / f"{split}.tsv", encoding="utf-8") as f:
        rows = csv.reader(f, delimiter="\t")
        next(rows)
        for qid, did, score in rows:
            long_id, position, members = container[did]
            grades[qid, long_id] = max(grades.get((qid, long_id), 0), int(score))
            if int(score) > 0:
                places.append("alone" if members == 1 else "first" if position == 0 else
                              "last" if position == members - 1 else "middle")
    with open(out / "qrels" / f"{split}.tsv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["query-id", "corpus-id", "score"])
        w.writerows((q, d, s) for (q, d), s in sorted(grades.items()))
    words = [len(d["text"].split()) for d in long_docs]
    return {"source": str(dataset), "documents": len(long_docs), "mean_words": round(statistics.mean(words)),
            "median_words": statistics.median(words), "over_400_words": round(sum(w > 400 for w in words) / len(words), 3),
            "judged_inside": {p: places.count(p) for p in ("alone", "first", "middle", "last")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", type=Path, required=True, help="BEIR folder to build from")
    ap.add_argument("--out", type=Path, required=True, help="BEIR folder to write")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--smallest", type=int, default=1, help="fewest source documents in one long document")
    ap.add_argument("--largest", type=int, default=8, help="most source documents in one long document")
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    print(json.dumps(build(args.dataset, args.out, args.seed, args.smallest, args.largest, args.split)))


if __name__ == "__main__":
    main()

"""The documents benchmarks encode: the first ones of a BEIR collection's corpus.jsonl."""
from __future__ import annotations

import json
from itertools import islice
from pathlib import Path


def first_documents(dataset: str | Path, count: int) -> list[dict]:
    """The first ``count`` documents of ``dataset``/corpus.jsonl."""
    with open(Path(dataset) / "corpus.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in islice(f, count)]

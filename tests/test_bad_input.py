"""The bad-input catalogue, ingest side: one real ingest (CLI, real node) of good records interleaved
with every kind of bad one. Each case is its own test: rejected records are named (line / id) with the
reason in the dead-letter file, accepted oddities are indexed, and every good record lands once."""
from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import pytest

from tests.conftest import SAMPLE, cli, load_jsonl
from tests.faults import get

pytestmark = [pytest.mark.integration, pytest.mark.model]

NESTED = "[" * 5000 + "]" * 5000


@dataclass(frozen=True)
class Case:
    name: str
    line: bytes
    outcome: str            # "rejected" (dead-letter) or "indexed"
    reason: str = ""        # substring of the dead-letter reason
    id: str | None = None   # the record's id when it has one


def j(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode()


BIG_TEXT = " ".join(f"lexeme{i % 5000}" for i in range(150_000))  # ~1.3 MB, far beyond 512 tokens
CASES = [
    Case("malformed_json", b'{"_id": "m1", "text": "unterminated', "rejected", "malformed JSON"),
    Case("trailing_garbage", b'{"_id": "m2", "text": "x"} extra', "rejected", "malformed JSON"),
    Case("array_not_object", b'["m3", "text"]', "rejected", "JSON object was expected"),
    Case("string_not_object", b'"just a string"', "rejected", "JSON object was expected"),
    Case("missing_id", j({"text": "no id here"}), "rejected", "is missing"),
    Case("null_id", j({"_id": None, "text": "null id"}), "rejected", "is missing or null"),
    Case("empty_id", j({"_id": "", "text": "empty id"}), "rejected", "is empty"),
    Case("whitespace_id", j({"_id": "   ", "text": "blank id"}), "rejected", "is empty"),
    Case("list_id", j({"_id": ["a"], "text": "list id"}), "rejected", "has type list"),
    Case("bool_id", j({"_id": True, "text": "bool id"}), "rejected", "has type bool"),
    Case("float_id", j({"_id": 1.5, "text": "float id"}), "rejected", "has type float"),
    Case("integer_id", j({"_id": 4242, "text": "integer ids are accepted as strings"}), "indexed", id="4242"),
    Case("duplicate_id", j({"_id": "dup", "text": "second copy of dup"}), "rejected", "duplicate id", id="dup"),
    Case("missing_text", j({"_id": "t1"}), "rejected", "no text", id="t1"),
    Case("number_text", j({"_id": "t2", "text": 42}), "rejected", "has type int, expected a string", id="t2"),
    Case("object_text", j({"_id": "t3", "text": {"a": 1}}), "rejected", "has type dict, expected a string", id="t3"),
    Case("empty_text", j({"_id": "t4", "text": ""}), "rejected", "no text", id="t4"),
    Case("whitespace_text", j({"_id": "t5", "text": " \t\n  "}), "rejected", "no text", id="t5"),
    Case("title_only", j({"_id": "t6", "title": "Vitamin D deficiency and bone density"}), "indexed", id="t6"),
    Case("invalid_utf8", b'{"_id": "u1", "text": "caf\xe9 au lait"}', "rejected", "invalid UTF-8"),
    Case("byte_order_mark", b'\xef\xbb\xbf{"_id": "bom", "text": "a line with a BOM"}', "indexed", id="bom"),
    Case("nan_value", b'{"_id": "n1", "text": "fine text", "score": NaN}', "rejected", "NaN is not valid JSON"),
    Case("infinity_value", b'{"_id": "n2", "text": "fine text", "score": Infinity}', "rejected", "Infinity"),
    Case("nested_too_deeply", ('{"_id": "d1", "text": "x", "deep": ' + NESTED + "}").encode(), "rejected",
         "nested too deeply"),
    Case("control_characters", j({"_id": "c1", "text": "bell\u0007 nul\u0000 escape\u001b vitamin"}), "indexed",
         id="c1"),
    Case("emoji_mixed_scripts", j({"_id": "e1", "text": "🧬 DNA repair — Доказательство 证据 دليل ✓"}), "indexed",
         id="e1"),
    Case("ten_thousand_char_token", j({"_id": "k1", "text": "a" * 10_000}), "indexed", id="k1"),
    Case("punctuation_only_text", j({"_id": "p1", "text": "?!... ;;; ---"}), "indexed", id="p1"),
    Case("one_megabyte_document", j({"_id": "big", "text": BIG_TEXT}), "indexed", id="big"),
    Case("awkward_tokens", j({"_id": "w1", "text": "e.g. C# and F# [unused0] [unused7] 3.14 a.b.c"}), "indexed",
         id="w1"),
    Case("vector_field_in_record", j({"_id": "v1", "text": "record brings its own splade", "splade": "junk"}),
         "indexed", id="v1"),
    # rejected by the cluster itself, per document, named by id
    Case("id_over_512_bytes", j({"_id": "x" * 600, "text": "long id"}), "rejected", "too long", id="x" * 600),
    Case("field_type_conflict", j({"_id": "f1", "text": "year is text here", "year": "not a number"}), "rejected",
         "mapper_parsing_exception", id="f1"),
]


@pytest.fixture(scope="module")
def catalogue(node_url, client, tiny_model, tmp_path_factory):
    """Ingest good records with every case between them; run in another directory than the input's."""
    good = load_jsonl(SAMPLE, 40)
    good[0] = {**good[0], "year": 2020}  # maps "year" as a number before field_type_conflict
    good[1] = {**good[1], "_id": "dup"}  # the first record with id "dup" (kept)
    src_dir, work = tmp_path_factory.mktemp("input"), tmp_path_factory.mktemp("work")
    lines, where = [], {}
    for i, case in enumerate(CASES):
        lines.append(j(good[i]))
        lines.append(case.line)
        where[case.name] = len(lines)
    lines += [j(d) for d in good[len(CASES):]]
    lines.insert(5, b"   ")  # blank lines are skipped, not counted
    where = {k: v + 1 if v >= 6 else v for k, v in where.items()}
    src = src_dir / "docs.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    index = f"bad-{uuid.uuid4().hex[:8]}"
    proc = cli("--url", node_url, "ingest", index, str(src), "--model", "splade-tiny", "--format", "json",
               "--window", "16", cwd=work)
    letters = list(work.glob(f"{index}-deadletter-*.jsonl"))
    dead = [json.loads(x) for x in letters[0].read_text(encoding="utf-8").splitlines()] if letters else []
    yield {"proc": proc, "summary": json.loads(proc.stdout or "null"), "dead": dead, "where": where,
           "index": index, "good": good, "letters": letters, "src_dir": src_dir, "url": node_url}
    client.indices.delete(index=index, ignore_unavailable=True)


def _stored(url: str, index: str, doc_id: str) -> dict | None:
    from urllib.parse import quote

    try:
        return get(url, f"/{index}/_doc/{quote(doc_id, safe='')}")["_source"]
    except Exception:
        return None


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(catalogue, case):
    dead, line = catalogue["dead"], catalogue["where"][case.name]
    by_line = [d for d in dead if d.get("line") == line]
    by_id = [d for d in dead if case.id is not None and d.get("id") == case.id and "line" not in d]
    if case.outcome == "rejected":
        entries = by_line or by_id
        assert len(entries) == 1, f"{case.name}: no single dead-letter entry at line {line}: {dead}"
        assert case.reason in entries[0]["reason"], entries[0]
        if case.id is not None:
            assert entries[0]["id"] == case.id
            if case.name != "duplicate_id":  # the first "dup" is a good record and stays
                assert _stored(catalogue["url"], catalogue["index"], case.id) is None
    else:
        assert not by_line, by_line
        stored = _stored(catalogue["url"], catalogue["index"], case.id)
        assert stored is not None, f"{case.name}: {case.id} was not indexed"
        passages = stored["splade"]  # the default layout: a list of passages, each with its weights
        assert isinstance(passages, list) and passages and all(p["weights"] for p in passages), \
            "indexed without a vector"


def test_every_good_record_is_indexed_once_and_counts_add_up(catalogue, client):
    summary, index = catalogue["summary"], catalogue["index"]
    client.indices.refresh(index=index)
    rejected = sum(c.outcome == "rejected" for c in CASES)
    accepted = sum(c.outcome == "indexed" for c in CASES)
    assert catalogue["proc"].returncode == 1, "partial failure must exit 1"
    assert summary["read"] == len(catalogue["good"]) + len(CASES)
    assert (summary["failed"], summary["indexed"]) == (rejected, len(catalogue["good"]) + accepted)
    assert client.count(index=index)["count"] == summary["indexed"]
    for d in catalogue["good"]:
        assert _stored(catalogue["url"], index, d["_id"]) is not None, d["_id"]
    assert len(catalogue["dead"]) == rejected


def test_dead_letter_defaults_to_the_working_directory(catalogue):
    """Named after the index and the time, in the working directory, never beside the input."""
    (letter,) = catalogue["letters"]
    assert letter.name.startswith(f"{catalogue['index']}-deadletter-") and letter.suffix == ".jsonl"
    assert not list(catalogue["src_dir"].glob("*deadletter*"))
    assert str(letter.name) in catalogue["proc"].stdout or letter.name == catalogue["summary"]["dead_letter"]


def test_all_records_bad_exits_2_and_all_good_exits_0(node_url, client, tmp_path):
    index = f"bad-{uuid.uuid4().hex[:8]}"
    bad, good = tmp_path / "bad.jsonl", tmp_path / "good.jsonl"
    bad.write_bytes(b'{"_id": "a"}\n{broken\n')
    good.write_bytes(b"\n".join(j(d) for d in load_jsonl(SAMPLE, 3)) + b"\n")
    try:
        ok = cli("--url", node_url, "ingest", index, str(good), "--model", "splade-tiny", cwd=tmp_path)
        assert ok.returncode == 0, ok.stderr
        assert "Traceback" not in ok.stderr
        failed = cli("--url", node_url, "ingest", index, str(bad), "--model", "splade-tiny", cwd=tmp_path)
        assert failed.returncode == 2, failed.stderr
        assert "Traceback" not in failed.stderr and "failed 2" in failed.stdout
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)

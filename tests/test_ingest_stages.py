"""Pure ingest stages: parsing, validation, actions. No cluster."""
import copy
import json

import numpy as np

from bridge.actions import Encoded, Unchanged, bulk_action, content_hash, encoded_actions
from bridge.stamp import IndexStamp, ModelStamp
from bridge.records import count_records, read_jsonl, to_documents
from bridge.types import BadRecord, Document, SparseVector


def test_read_jsonl_reports_line_numbers_for_bad_lines():
    lines = [b'{"_id": "1", "text": "a"}\n', b"{not json\n", b"\n", b"[1, 2]\n", b'{"_id": "2", "text": "\xff"}\n']
    out = list(read_jsonl(lines))
    assert out[0]["_id"] == "1" and out[0]["__line__"] == 1
    assert isinstance(out[1], BadRecord) and out[1].line == 2 and "malformed JSON" in out[1].reason
    assert isinstance(out[2], BadRecord) and out[2].line == 4 and "object" in out[2].reason
    assert isinstance(out[3], BadRecord) and out[3].line == 5 and "UTF-8" in out[3].reason


def test_a_progress_total_counts_records_not_compressed_lines(tmp_path):
    """A ``.jsonl.gz``'s total is its records (1,000), not the newline bytes of its compressed form."""
    import gzip

    lines = [json.dumps({"_id": str(i), "text": f"document {i} " * 20}) + "\n" for i in range(1000)] + ["\n"]
    gz, plain = tmp_path / "docs.jsonl.gz", tmp_path / "docs.jsonl"
    with gzip.open(gz, "wt") as f:
        f.writelines(lines)
    plain.write_text("".join(lines))
    assert count_records(str(gz)) == count_records(str(plain)) == 1000
    assert count_records("-") is None
    damaged = tmp_path / "damaged.jsonl.gz"
    damaged.write_bytes(gz.read_bytes()[:-200])
    assert count_records(str(damaged)) is None  # no total rather than no ingest


def test_to_documents_validates_and_joins_title_and_text():
    records = [
        {"_id": "a", "title": "Title", "text": "Body", "year": 2020},
        {"title": "no id", "text": "x"},
        {"_id": "c", "title": "", "text": "   "},
        {"_id": "d", "text": 42},
        {"_id": 7, "text": "integer ids become strings"},
    ]
    frozen = copy.deepcopy(records)
    out = list(to_documents(records))
    assert out[0] == Document(id="a", text="Title\nBody", fields={"title": "Title", "text": "Body", "year": 2020},
                              line=1)
    assert isinstance(out[1], BadRecord) and "id" in out[1].reason and out[1].line == 2
    assert isinstance(out[2], BadRecord) and out[2].id == "c" and "no text" in out[2].reason
    assert isinstance(out[3], BadRecord) and out[3].id == "d" and "expected a string" in out[3].reason
    assert out[4].id == "7"
    assert records == frozen  # the caller's records are never mutated


MODEL = ModelStamp("fake", "0" * 16)


class FakeEncoder:
    vocab = ["[PAD]", "hello", "wor.ld", "x"]

    def encode_documents(self, texts):
        return [SparseVector(np.array([1, 2]), np.array([len(t) / 10, 0.25], dtype=np.float32)) for t in texts]


def test_encoded_actions_keep_order_and_pass_bad_records_through():
    stamp = IndexStamp(MODEL, vector_field="vec")
    docs = [Document("1", "abc", {"text": "abc"}, line=1), BadRecord("broken", line=2), Document("3", "abcdef", {})]
    windows = list(encoded_actions(docs, FakeEncoder(), "idx", stamp, window=2))
    assert [len(w) for w in windows] == [2, 1]
    first, bad, last = windows[0][0], windows[0][1], windows[1][0]
    assert first == Encoded({"_op_type": "index", "_index": "idx", "_id": "1",
                             "_source": {"text": "abc", "vec": {"hello": np.float32(0.3).item(), "wor%2Eld": 0.25},
                                         "content_hash": content_hash(Document("1", "abc"), stamp.content_key())}},
                            line=1)
    assert bad == BadRecord("broken", line=2)
    assert last.id == "3"


def test_bulk_action_does_not_share_state_with_document():
    doc = Document("1", "t", {"meta": {"k": 1}})
    action = bulk_action("i", doc, {"a": 1.0}, "v", "hash")
    action["_source"]["extra"] = 1
    assert "extra" not in doc.fields
    assert json.dumps(action)  # serialisable as-is


def test_unchanged_documents_are_not_encoded():
    stamp = IndexStamp(MODEL, vector_field="vec")
    seen = []

    class Recording(FakeEncoder):
        def encode_documents(self, texts):
            seen.extend(texts)
            return super().encode_documents(texts)

    docs = [Document("1", "same"), Document("2", "changed")]
    stored = {"1": content_hash(Document("1", "same"), stamp.content_key()), "2": "old-hash"}
    (window,) = encoded_actions(docs, Recording(), "idx", stamp, window=8,
                                unchanged=lambda d: {i for i, h in d.items() if stored.get(i) == h})
    assert window[0] == Unchanged("1") and window[1].id == "2"
    assert seen == ["changed"]


def test_hash_depends_on_text_and_model_stamp():
    doc = Document("1", "text")
    a = IndexStamp(ModelStamp("m", "a"), vector_field="v").content_key()
    b = IndexStamp(ModelStamp("m", "b"), vector_field="v").content_key()
    assert content_hash(doc, a) != content_hash(doc, b)
    assert content_hash(doc, a) != content_hash(Document("1", "text!"), a)

"""The pure parts of SPLADE on existing indices: the enable plan and its refusals, partial-write actions,
conditional-write outcomes, stored vectors in list form, slices, keys as ids. No cluster."""
import pytest

from bridge.actions import Encoded, Missing, Unchanged, content_hash, encoded_actions, merged
from bridge.enabling import plan
from bridge.errors import ConfigError
from bridge.mapping import IndexConfig
from bridge.outcomes import outcomes_of
from bridge.scan import Slice
from bridge.sparse import from_features
from bridge.stamp import IndexStamp, ModelStamp
from bridge.types import Deletion, Document, Stored
from bridge.worker.messages import to_record
from tests.test_ingest_stages import FakeEncoder

MODEL = ModelStamp("fake", "0" * 16)
USER = {"idx": {"mappings": {"_meta": {"owner": "team"}, "properties": {
    "title": {"type": "text"}, "body": {"type": "text"}, "tag": {"type": "keyword"},
    "nested": {"type": "nested", "properties": {"text": {"type": "text"}}},
    "obj": {"properties": {"inner": {"type": "text"}}}}}}}


def test_enable_plan_adds_two_fields_and_merges_meta():
    p = plan(USER, set(), IndexConfig(text_fields=("title", "obj.inner")), MODEL)
    change = p.changes["idx"]
    assert change["properties"] == {"splade": {"type": "rank_features"}, "content_hash": {"type": "keyword"}}
    assert change["_meta"]["owner"] == "team" and change["_meta"]["splade_bridge"]["enabled"] is True
    assert IndexStamp.from_meta(change["_meta"]["splade_bridge"]).text_fields == ("title", "obj.inner")
    enabled = {"idx": {"mappings": {**USER["idx"]["mappings"], "_meta": change["_meta"],
                                    "properties": {**USER["idx"]["mappings"]["properties"], **change["properties"]}}}}
    assert not plan(enabled, set(), IndexConfig(text_fields=("title", "obj.inner")), MODEL).changed
    other = ModelStamp("other", "1" * 16)
    with pytest.raises(ConfigError, match="reindex"):
        plan(enabled, set(), IndexConfig(text_fields=("title", "obj.inner")), other)


@pytest.mark.parametrize("cfg, closed, words", [
    (IndexConfig(text_fields=("missing",)), set(), "does not exist"),
    (IndexConfig(text_fields=("tag",)), set(), "not text"),
    (IndexConfig(text_fields=("obj",)), set(), "an object"),
    (IndexConfig(text_fields=("nested.text",)), set(), "nested"),
    (IndexConfig(text_fields=("title",), vector_field="tag"), set(), "type keyword"),
    (IndexConfig(text_fields=("title",)), {"idx"}, "closed"),
])
def test_enable_plan_refuses_with_the_reason(cfg, closed, words):
    with pytest.raises(ConfigError, match=words):
        plan(USER, closed, cfg, MODEL)


def _stored(doc_id, text, digest=None, seq=3):
    return Stored("idx-1", doc_id, {"title": text, **({"content_hash": digest} if digest else {})}, seq, 1)


def test_update_writes_only_vector_and_hash_conditionally_and_skips_what_is_current():
    stamp = IndexStamp(model=MODEL, text_fields=("title",))
    current_hash = content_hash(Document("b", "same"), stamp.content_key())
    store = {"a": _stored("a", "new text", "stale"), "b": _stored("b", "same", current_hash)}
    asked = []

    def current(ids):
        asked.append(ids)
        return {i: store[i] for i in ids if i in store}

    docs = [Document("a", "", {"title": "ignored"}, 1), Document("b", "", {}, 2), Document("gone", "", {}, 3),
            Deletion("a", 4, version=9)]
    out, = encoded_actions(docs, FakeEncoder(), "alias", stamp, 10, write="update", current=current)
    assert asked == [["a", "b", "gone"]]
    first = out[0]
    assert isinstance(first, Encoded) and first.action["_op_type"] == "update" and first.action["_index"] == "idx-1"
    assert first.action["if_seq_no"] == 3 and first.action["if_primary_term"] == 1
    doc = first.action["doc"]
    assert set(doc) == {"splade", "content_hash"} and isinstance(doc["splade"], list) and len(doc["splade"]) == 1
    assert first.retry == Document("a", "", {}, 1, None, Stored("idx-1", "a", {}))  # read again, never recreated
    assert out[1] == Unchanged("b", 2) and out[2] == Missing("gone", 3)
    assert out[3] == Missing("a", 4)  # update: the index's own writers delete; a tombstone writes nothing
    # the retry of a document deleted meanwhile: missing, not created again
    again, = encoded_actions([first.retry], FakeEncoder(), "alias", stamp, 10, write="update",
                             current=lambda ids: {})
    assert again == [Missing("a", 1)]


def test_upsert_merges_the_record_into_the_stored_text_or_creates():
    stamp = IndexStamp(model=MODEL, text_fields=("title", "body"))
    store = {"a": Stored("idx-1", "a", {"title": "old title", "body": "kept body"}, 5, 2)}
    docs = [Document("a", "", {"title": "new title"}, 1), Document("n", "", {"title": "fresh", "tag": "x"}, 2)]
    out, = encoded_actions(docs, FakeEncoder(), "alias", stamp, 10, write="upsert",
                           current=lambda ids: {i: store[i] for i in ids if i in store})
    update, create = out[0].action, out[1].action
    assert update["_op_type"] == "update" and update["doc"]["title"] == "new title" and "body" not in update["doc"]
    assert update["doc"]["content_hash"] == content_hash(Document("a", "new title\nkept body"), stamp.content_key())
    assert create["_op_type"] == "create" and create["_index"] == "alias" and create["_source"]["tag"] == "x"
    assert out[1].retry.fields == {"title": "fresh", "tag": "x"} and out[1].retry.stored is None
    # an upsert's retry of a document that existed and was deleted meanwhile is not recreated
    gone, = encoded_actions([out[0].retry], FakeEncoder(), "alias", stamp, 10, write="upsert",
                            current=lambda ids: {})
    assert gone == [Missing("a", 1)]
    deletion, = encoded_actions([Deletion("a", 3, version=7)], FakeEncoder(), "alias", stamp, 10, write="upsert",
                                current=lambda ids: {})
    assert deletion[0].action == {"_op_type": "delete", "_index": "alias", "_id": "a"}  # no external version


def test_merged_follows_the_engines_partial_update():
    assert merged({"a": {"b": 1, "c": 2}, "d": [1]}, {"a": {"b": 3}, "d": [2]}) == {"a": {"b": 3, "c": 2}, "d": [2]}


def test_conditional_write_outcomes():
    item = Encoded({"_op_type": "update", "_id": "a"}, 1, retry=Document("a", "", {}, 1))
    answers = {409: "conflict", 404: "missing"}
    for status, expected in answers.items():
        (o,) = outcomes_of([item], [(False, {"update": {"_id": "a", "status": status,
                                                        "error": {"type": "version_conflict_engine_exception"}}})])
        assert o.status == expected and (o.retry is not None) == (expected == "conflict")
    (o,) = outcomes_of([Encoded({"_op_type": "index", "_id": "a"}, 1)],
                       [(False, {"index": {"_id": "a", "status": 409, "error": "version conflict"}})])
    assert o.status == "already_applied"


def test_stored_vectors_in_list_form_read_as_one():
    assert from_features([{"a": 1.0, "b": 2.0}]) == {"a": 1.0, "b": 2.0}
    assert from_features([{"a": 1.0}, {"a": 3.0}]) == {"a": 3.0}
    assert from_features({"wor%2Eld": 0.5}) == {"wor.ld": 0.5}


def test_slices():
    assert Slice.parse("1/4") == Slice(1, 4) and str(Slice(1, 4)) == "1/4"
    for bad in ("4/4", "x", "1/0", "-1/2"):
        with pytest.raises(ConfigError):
            Slice.parse(bad)


def test_id_from_the_message_key():
    rec = to_record(b'{"_id": "body-id", "title": "t"}', b"key-id", 0, 1, "_id", id_from_key=True)
    assert rec["_id"] == "key-id"
    assert "no key" in to_record(b'{"title": "t"}', None, 0, 1, "_id", id_from_key=True).reason

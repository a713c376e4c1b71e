"""The disk a reindex needs: a second copy of the source, free below the high watermark (bridge/disk.py)."""
import logging

from bridge import disk

GB = 2**30


def _node(total: int, free: int, roles=("data", "ingest", "master")) -> dict:
    return {"roles": list(roles), "fs": {"total": {"total_in_bytes": total, "available_in_bytes": free}}}


def test_high_watermark_reads_percentages_ratios_and_falls_back_to_the_default():
    assert disk.high_watermark({"defaults": {disk.HIGH_WATERMARK: "90%"}}) == 0.90
    assert disk.high_watermark({"persistent": {disk.HIGH_WATERMARK: "85.5%"},
                                "defaults": {disk.HIGH_WATERMARK: "90%"}}) == 0.855
    assert disk.high_watermark({"transient": {"cluster": {"routing": {"allocation": {"disk": {"watermark": {
        "high": "0.8"}}}}}}}) == 0.8  # nested, a ratio
    assert disk.high_watermark({"persistent": {disk.HIGH_WATERMARK: "50gb"}}) == disk.DEFAULT_HIGH  # absolute
    assert disk.high_watermark({}) == disk.DEFAULT_HIGH


def test_usable_bytes_counts_data_nodes_below_the_watermark():
    stats = {"nodes": {"a": _node(100 * GB, 30 * GB),               # 30 free, 10 of them above 90%: 20 usable
                       "b": _node(100 * GB, 5 * GB),                # already past the watermark: 0, not negative
                       "c": _node(100 * GB, 90 * GB, ("master",)),  # not a data node
                       "d": _node(100 * GB, 50 * GB, ("data_hot",))}}
    assert disk.usable_bytes(stats, 0.90) == 20 * GB + 40 * GB


class _Cluster:
    def __init__(self, primaries: int, free: int):
        self.primaries, self.free = primaries, free
        self.indices, self.cluster, self.nodes = self, self, self

    def stats(self, index=None, metric=None):
        if metric == "fs":
            return {"nodes": {"n": _node(1000 * GB, self.free)}}
        return {"_all": {"primaries": {"store": {"size_in_bytes": self.primaries}}}}

    def get_settings(self, **_):
        return {"defaults": {disk.HIGH_WATERMARK: "90%"}}


def test_check_room_warns_only_when_a_copy_with_its_replicas_does_not_fit():
    assert disk.check_room(_Cluster(primaries=100 * GB, free=400 * GB), ["docs"], replicas=1) is None  # 200 of 300
    warning = disk.check_room(_Cluster(primaries=100 * GB, free=250 * GB), ["docs"], replicas=1)  # 200 of 150
    assert "docs" in warning and "200.0 GB" in warning and "150.0 GB" in warning


def test_check_room_on_a_live_node(client, index_name):
    """The node's own stats: a small index fits; one that would need more than the disks hold is named."""
    client.indices.create(index=index_name, body={"settings": {"number_of_replicas": 0}})
    client.index(index=index_name, id="1", body={"text": "x" * 10_000}, refresh=True)
    client.indices.flush(index=index_name)
    size = disk.needed_bytes(client, [index_name], 0)
    assert size == client.indices.stats(index=index_name, metric="store")["_all"]["primaries"]["store"][
        "size_in_bytes"] > 0
    assert disk.check_room(client, [index_name], replicas=0) is None
    usable = disk.usable_bytes(client.nodes.stats(metric="fs"), 0.90)
    assert usable > 0
    replicas = usable // size + 1  # as many copies as the disks cannot hold
    assert index_name in (disk.check_room(client, [index_name], replicas=replicas) or "")


def test_check_room_is_advice_when_the_cluster_does_not_say(caplog):
    """A managed service that refuses node stats (403): no warning, the reindex goes on."""
    from opensearchpy.exceptions import AuthorizationException

    class Refusing(_Cluster):
        def get_settings(self, **_):
            raise AuthorizationException(403, "security_exception", {})

    with caplog.at_level(logging.DEBUG, logger="bridge.disk"):
        assert disk.check_room(Refusing(1, 0), ["docs"], 0) is None
    assert "disk check skipped" in caplog.text

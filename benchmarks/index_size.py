"""An index's size as the benchmarks report it: its primaries after a merge to one segment, read once the merged
segment has replaced the old ones (before a refresh the merged-away segments still count: a size read too early
came out about twice as big)."""
from __future__ import annotations


def store_bytes(client, index: str) -> int:
    client.indices.refresh(index=index)
    client.indices.forcemerge(index=index, max_num_segments=1)
    client.indices.flush(index=index)
    client.indices.refresh(index=index)
    return client.indices.stats(index=index, metric="store")["indices"][index]["primaries"]["store"]["size_in_bytes"]

"""Disk a reindex needs: the target is a second copy of the source (its primaries, then its replicas), written while
the source stays, so the data nodes need about the source's size again, free below the high disk watermark, where
the engine stops allocating shards to a node (and at the flood stage, blocks the index's writes)."""
from __future__ import annotations

import logging
import re

from .connection.failures import client_exceptions
from .records import field_value

log = logging.getLogger(__name__)

HIGH_WATERMARK = "cluster.routing.allocation.disk.watermark.high"
DEFAULT_HIGH = 0.90  # the engines' default: 90% of a disk used


def needed_bytes(client, indices: list[str] | tuple[str, ...], replicas: int) -> int:
    """The target's size if it is the source's: the source's primaries, times one plus the replicas restored."""
    stats = client.indices.stats(index=",".join(indices), metric="store")
    return int(stats["_all"]["primaries"]["store"]["size_in_bytes"]) * (1 + replicas)


def high_watermark(settings: dict) -> float:
    """The high watermark as a share of a disk (a percentage or a ratio); an absolute one (``"50gb"`` free) or none
    set: the default 90%."""
    for scope in ("transient", "persistent", "defaults"):
        value = field_value(settings.get(scope) or {}, HIGH_WATERMARK)  # flat or nested
        if value is None:
            continue
        text = str(value).strip()
        if re.fullmatch(r"\d+(\.\d+)?%", text):
            return float(text[:-1]) / 100
        if re.fullmatch(r"0?\.\d+|1(\.0+)?", text):
            return float(text)
        return DEFAULT_HIGH
    return DEFAULT_HIGH


def usable_bytes(nodes_fs: dict, high: float) -> int:
    """Free bytes on the data nodes below the high watermark (``nodes.stats(metric="fs")``)."""
    total = 0
    for node in (nodes_fs.get("nodes") or {}).values():
        roles = node.get("roles")
        if roles is not None and not any(r == "data" or r.startswith("data_") for r in roles):
            continue
        fs = (node.get("fs") or {}).get("total") or {}
        size, free = int(fs.get("total_in_bytes", 0)), int(fs.get("available_in_bytes", 0))
        total += max(0, free - round((1 - high) * size))
    return total


def check_room(client, indices: list[str] | tuple[str, ...], replicas: int) -> str | None:
    """A warning when the data nodes lack the room for a copy of ``indices``; None when they have it, or when the
    cluster does not say (a managed service may not expose node stats)."""
    conn, missing, transport = client_exceptions()
    try:
        needed = needed_bytes(client, indices, replicas)
        settings = client.cluster.get_settings(include_defaults=True, flat_settings=True)
        usable = usable_bytes(client.nodes.stats(metric="fs"), high_watermark(settings))
    except conn + missing + transport + (KeyError, TypeError, ValueError) as e:  # advice: the reindex goes on
        log.debug("disk check skipped: %s", e)
        return None
    if needed <= usable:
        return None
    return (f"the reindex writes a second copy of {','.join(indices)}: about {_gb(needed)} with its replicas, "
            f"and the data nodes have {_gb(usable)} free below the high disk watermark; free disk (or add nodes) "
            "before the copy fills them (past the flood stage the engine blocks the target's writes)")


def _gb(n: int) -> str:
    return f"{n / 2**30:.1f} GB"

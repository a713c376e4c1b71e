"""Aliases as a reindex uses them: the indices behind one, an atomic swap, and the rollback to the index it
named before the last reindex (recorded in the new index's stamp)."""
from __future__ import annotations

from .errors import ReindexError
from .indices import stamp_of


def alias_indices(client, alias: str) -> list[str]:
    if not client.indices.exists_alias(name=alias):
        return []
    return sorted(client.indices.get_alias(name=alias))


def resolve(client, name: str) -> list[str]:
    """Concrete indices behind an index name or alias."""
    return sorted(client.indices.get(index=name))


def swap_alias(client, alias: str, new: str, old: tuple[str, ...]) -> None:
    """Point ``alias`` at ``new`` only, in one atomic ``_aliases`` call."""
    actions = [{"remove": {"index": i, "alias": alias}} for i in old if i != new]
    actions.append({"add": {"index": new, "alias": alias}})
    client.indices.update_aliases(body={"actions": actions})


def rollback(client, alias: str) -> tuple[str, str]:
    """Point ``alias`` back at the index it named before the last reindex; returns (from, to)."""
    current = alias_indices(client, alias)
    if len(current) != 1:
        raise ReindexError(f"alias {alias!r} points at {current or 'nothing'}; expected one index")
    stamp = stamp_of(client, current[0])
    previous = list(stamp.reindex.previous) if stamp and stamp.reindex else []
    previous = [i for i in previous if client.indices.exists(index=i)]
    if not previous:
        raise ReindexError(f"{current[0]} records no earlier index for {alias!r} that still exists")
    client.indices.update_aliases(body={"actions": [{"remove": {"index": current[0], "alias": alias}}]
                                        + [{"add": {"index": i, "alias": alias}} for i in previous]})
    return current[0], ",".join(previous)

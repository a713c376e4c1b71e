"""Creating a topic on any cluster a client configuration reaches (``kafka topic create``): as many partitions
as workers you will ever run in one group (partitions can be added later, never removed)."""
from __future__ import annotations

from ..api import BridgeError, ConfigError


def create(properties: dict, name: str, partitions: int, replication: int = -1, if_not_exists: bool = False,
           timeout: float = 30.0) -> dict:
    """Create topic ``name``; returns ``{"topic", "partitions", "created"}``. ``replication`` -1: the cluster's
    default. An existing topic is an error unless ``if_not_exists`` (then its partition count is returned)."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    if partitions < 1:
        raise ConfigError("partitions must be >= 1")
    admin = AdminClient(properties)
    try:
        admin.create_topics([NewTopic(name, partitions, replication)])[name].result(timeout)
        return {"topic": name, "partitions": partitions, "created": True}
    except KafkaException as exc:
        error = exc.args[0]
        if error.name() != "TOPIC_ALREADY_EXISTS":
            raise BridgeError(f"could not create topic {name}: {error.str()}") from None
    existing = len(admin.list_topics(name, timeout=timeout).topics[name].partitions)
    if not if_not_exists:
        raise ConfigError(f"topic {name} already exists with {existing} partitions")
    return {"topic": name, "partitions": existing, "created": False}

"""Helpers of the stream-worker tests: the broker scripts/test.sh starts (BRIDGE_KAFKA), topics,
producing documents, worker processes, and reading a topic back."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

from tests.conftest import REPO


def bootstrap() -> str:
    return os.environ.get("BRIDGE_KAFKA", "127.0.0.1:19092")


def new_topic(partitions: int, prefix: str = "t") -> str:
    from confluent_kafka.admin import AdminClient, NewTopic

    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap()})
    for future in admin.create_topics([NewTopic(name, partitions, 1)]).values():
        future.result(30)
    return name


def produce(topic: str, messages) -> int:
    """``messages``: (key, value) pairs; a dict value is sent as JSON, bytes as they are, None as a tombstone."""
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": bootstrap(), "enable.idempotence": True, "linger.ms": 20})
    n = 0
    for key, value in messages:
        payload = json.dumps(value).encode() if isinstance(value, dict) else value
        producer.produce(topic, key=key.encode() if isinstance(key, str) else key, value=payload)
        n += 1
        if n % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0, "messages not delivered"
    return n


def read_topic(topic: str, expect: int, timeout: float = 60) -> list:
    """Every message of ``topic`` (until ``expect`` were read or ``timeout``): (partition, key, value)."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap(), "group.id": f"reader-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    out, deadline = [], time.monotonic() + timeout
    while len(out) < expect and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            out.append((m.partition(), m.key(), m.value()))
    consumer.close()
    return out


def group_lag(topic: str, group: str) -> int:
    """Messages of ``topic`` past ``group``'s committed offsets."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap(), "group.id": group, "enable.auto.commit": False})
    meta = consumer.list_topics(topic, timeout=10).topics[topic]
    parts = [TopicPartition(topic, p) for p in meta.partitions]
    committed = consumer.committed(parts, timeout=10)
    lag = 0
    for tp in committed:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
        lag += high - (tp.offset if tp.offset >= 0 else low)
    consumer.close()
    return lag


def start_worker(url: str, index: str, topic: str, group: str, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "bridge", "--url", url, "worker", index, "--kafka", bootstrap(), "--topic", topic,
            "--group", group, "--model", "splade-tiny", "--format", "json", "--threads", "1", *extra]
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})


def worker_metrics(port: int) -> dict[str, float]:
    """The worker's Prometheus samples by name (labels folded into the name), or {} while it starts."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


def stop_worker(proc: subprocess.Popen, timeout: float = 120) -> dict:
    """SIGTERM, then the worker's exit summary (it must exit 0)."""
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])

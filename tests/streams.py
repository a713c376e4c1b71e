"""Helpers of the stream-worker tests: the broker scripts/test.sh starts (BRIDGE_KAFKA), topics,
producing documents, worker processes, and reading a topic back."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
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


def read_topic(topic: str, expect: int, timeout: float = 60, headers: bool = False) -> list:
    """Every message of ``topic`` (until ``expect`` were read or ``timeout``): (partition, key, value), and its
    headers as a dict with ``headers``."""
    from confluent_kafka import Consumer

    consumer = Consumer({"bootstrap.servers": bootstrap(), "group.id": f"reader-{uuid.uuid4().hex[:6]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    out, deadline = [], time.monotonic() + timeout
    while len(out) < expect and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            out.append((m.partition(), m.key(), m.value(), dict(m.headers() or ())) if headers else
                       (m.partition(), m.key(), m.value()))
    consumer.close()
    return out


def group_lag(topic: str, group: str) -> int:
    """Messages of ``topic`` (several, comma-separated, or a ^pattern, as the worker takes them) past ``group``'s
    committed offsets."""
    import re

    from confluent_kafka import Consumer, KafkaException, TopicPartition

    consumer = Consumer({"bootstrap.servers": bootstrap(), "group.id": group, "enable.auto.commit": False})
    every = consumer.list_topics(timeout=10).topics
    names = [n for t in topic.split(",") for n in ([t] if not t.startswith("^") else
                                                   [n for n in every if re.match(t, n)])]
    parts = [TopicPartition(n, p) for n in names for p in every[n].partitions]
    for attempt in range(20):  # the group's coordinator may still be loading or moving (NOT_COORDINATOR)
        try:
            committed = consumer.committed(parts, timeout=10)
            break
        except KafkaException:
            if attempt == 19:
                raise
            time.sleep(0.5)
    lag = 0
    for tp in committed:
        low, high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)
        lag += high - (tp.offset if tp.offset >= 0 else low)
    consumer.close()
    return lag


def start_worker(url: str, index: str, topic: str, group: str, *extra: str) -> subprocess.Popen:
    """A worker process; its stderr goes to a file (``log_of``), so a chatty worker never blocks on a pipe."""
    args = [sys.executable, "-m", "bridge", "--url", url, "worker", index, "--kafka", bootstrap(), "--topic", topic,
            "--group", group, "--model", "splade-tiny", "--format", "json", "--threads", "1", *extra]
    log = tempfile.NamedTemporaryFile(mode="w+", prefix="worker-", suffix=".log", delete=False)
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"})
    proc.log_path = log.name
    log.close()
    return proc


def log_of(proc: subprocess.Popen, tail: int = 4000) -> str:
    with open(proc.log_path, encoding="utf-8", errors="replace") as f:
        return f.read()[-tail:]


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


def worker_probe(port: int, path: str) -> tuple[int, dict]:
    """(HTTP status, JSON body) of the worker's ``/healthz`` or ``/readyz``."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def running(proc: subprocess.Popen) -> bool:
    """True while the worker runs; its exit status and stderr as the failure when it died."""
    if proc.poll() is None:
        return True
    raise AssertionError(f"the worker exited with {proc.returncode}: {log_of(proc)}")


def stop_worker(proc: subprocess.Popen, timeout: float = 120) -> dict:
    """SIGTERM, then the worker's exit summary (it must exit 0)."""
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, log_of(proc)
    return json.loads(out.strip().splitlines()[-1])


def drain_with_worker(url: str, index: str, topic: str, group: str, *extra: str, timeout: float = 300) -> dict:
    """One worker until ``group`` has no lag on ``topic``; its exit summary."""
    from tests.faults import wait_for

    worker = start_worker(url, index, topic, group, *extra)
    try:
        wait_for(lambda: running(worker) and group_lag(topic, group) == 0, timeout=timeout, every=0.3)
        return stop_worker(worker)
    finally:
        finish(worker)


def finish(*workers: subprocess.Popen) -> None:
    """Kill what still runs and print each worker's log (pytest shows it when the test failed)."""
    for w in workers:
        if w.poll() is None:
            w.kill()
            w.wait(30)
        print(f"--- worker {w.pid} (exit {w.returncode}) ---\n{log_of(w)}")

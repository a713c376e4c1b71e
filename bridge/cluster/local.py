"""A real single-node OpenSearch (or Elasticsearch 7.17) for local work and tests, without Docker.

The distribution comes from Maven Central (cached in ``~/.m2``), is unpacked once under the state
directory, gets the ``mapper-extras`` module added, and runs as a dedicated system user when invoked
as root (both engines refuse to run as root).
"""
from __future__ import annotations

import json
import logging
import os
import pwd
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, NodeError
from .recipes import RECIPES, EngineRecipe, major_of
from .provision import find_java, install, state_root

log = logging.getLogger(__name__)

_HEAP = re.compile(r"^\d+[mMgG]$")


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

    def __post_init__(self) -> None:
        if self.engine not in RECIPES:
            raise ConfigError(f"engine must be one of {sorted(RECIPES)}, got {self.engine!r}")
        if not self.version:
            object.__setattr__(self, "version", RECIPES[self.engine].default_version)
        major_of(self.version)
        if not 1 <= self.port <= 65535:
            raise ConfigError(f"port must be in 1..65535, got {self.port}")
        if not _HEAP.match(self.heap):
            raise ConfigError(f"heap must look like 512m or 1g, got {self.heap!r}")

    @property
    def recipe(self) -> EngineRecipe:
        return RECIPES[self.engine]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def node_dir(self) -> Path:
        if self.data_dir is not None:
            return Path(self.data_dir)
        return state_root() / "nodes" / f"{self.engine}-{self.version}-{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.node_dir / "node.pid"


@dataclass(frozen=True)
class NodeInfo:
    url: str
    pid: int
    engine: str
    version: str
    seconds: float
    already_running: bool
    modules: tuple[str, ...]


# -- process control -------------------------------------------------------------------------------

def _http_json(url: str, timeout: float = 2.0) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return json.loads(resp.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _read_pid(spec: NodeSpec) -> int | None:
    try:
        pid = int(spec.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return pid


def _ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)
        return pwd.getpwnam(name)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


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
    info = _http_json(f"{url}/_nodes/plugins?filter_path=nodes.*.modules.name") or {}
    names = {m["name"] for node in info.get("nodes", {}).values() for m in node.get("modules", [])}
    return tuple(sorted(names))


def status(spec: NodeSpec) -> dict:
    pid = _read_pid(spec)
    root = _http_json(spec.url) if pid else None
    return {"running": bool(pid and root), "pid": pid, "url": spec.url,
            "version": (root or {}).get("version", {}).get("number"),
            "engine": spec.engine, "node_dir": str(spec.node_dir)}


def up(spec: NodeSpec, timeout: float = 180.0) -> NodeInfo:
    started = time.monotonic()
    pid = _read_pid(spec)
    if pid and _http_json(spec.url):
        return _ready(spec, pid, started, already_running=True)
    if _port_in_use(spec.port):
        raise NodeError(f"port {spec.port} is already taken by another process: stop it or pass --port")
    home = install(spec.recipe, spec.version)
    java_home = find_java(spec.recipe.min_java(spec.version), spec.java_home)
    nd = spec.node_dir
    for sub in ("data", "logs"):
        (nd / sub).mkdir(parents=True, exist_ok=True)
    spec.pid_file.unlink(missing_ok=True)
    env = {"JAVA_HOME": str(java_home), spec.recipe.java_home_var: str(java_home),
           ("OPENSEARCH_JAVA_OPTS" if spec.engine == "opensearch" else "ES_JAVA_OPTS"):
               f"-Xms{spec.heap} -Xmx{spec.heap}",
           "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    settings = {"discovery.type": "single-node", "network.host": "127.0.0.1",
                "http.port": str(spec.port), "path.data": str(nd / "data"), "path.logs": str(nd / "logs"),
                "cluster.routing.allocation.disk.threshold_enabled": "false",
                "cluster.name": f"splade-bridge-{spec.port}", **dict(spec.settings)}
    if spec.engine == "elasticsearch":
        settings["xpack.security.enabled"] = "false"  # local test node: plain HTTP like the OpenSearch zip
    argv = [str(home / spec.recipe.executable), "-d", "-p", str(spec.pid_file)]
    argv += [f"-E{k}={v}" for k, v in settings.items()]
    prefix = ["env"] + [f"{k}={v}" for k, v in env.items()]
    if os.geteuid() == 0:
        user = _ensure_user(spec.user)
        _chown_tree(home, user.pw_uid, user.pw_gid)
        _chown_tree(nd, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", spec.user, "--"] + prefix
    with open(nd / "stdout.log", "w") as out:
        proc = subprocess.run(prefix + argv, stdout=out, stderr=subprocess.STDOUT, cwd=nd)
    if proc.returncode != 0:
        raise NodeError(f"{spec.engine} {spec.version} failed to start (exit {proc.returncode}); "
                        f"log tail:\n{log_tail(spec)}")
    deadline = started + timeout
    while time.monotonic() < deadline:
        pid = _read_pid(spec)
        health = _http_json(f"{spec.url}/_cluster/health?wait_for_status=yellow&timeout=1s")
        if pid and health and health.get("status") in ("yellow", "green"):
            return _ready(spec, pid, started, already_running=False)
        if (spec.pid_file.exists() and pid is None) or _startup_failed(spec):
            raise NodeError(f"{spec.engine} {spec.version} died during start; log tail:\n{log_tail(spec)}")
        time.sleep(0.5)
    raise NodeError(f"{spec.engine} {spec.version} not healthy after {timeout:.0f}s; log tail:\n"
                    f"{log_tail(spec)}")


def _ready(spec: NodeSpec, pid: int, started: float, already_running: bool) -> NodeInfo:
    modules = _modules(spec.url)
    if "mapper-extras" not in modules:
        raise NodeError(f"node at {spec.url} is up but mapper-extras is not loaded (modules: {modules})")
    root = _http_json(spec.url) or {}
    return NodeInfo(url=spec.url, pid=pid, engine=spec.engine,
                    version=root.get("version", {}).get("number", spec.version),
                    seconds=time.monotonic() - started, already_running=already_running,
                    modules=modules)


def down(spec: NodeSpec, timeout: float = 60.0) -> bool:
    """Stop the node via its pid file; returns False when it was not running."""
    pid = _read_pid(spec)
    if pid is None:
        spec.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _read_pid(spec) is None:
            break
        time.sleep(0.3)
    else:
        log.warning("node %d ignored SIGTERM for %.0fs; sending SIGKILL", pid, timeout)
        os.kill(pid, signal.SIGKILL)
    spec.pid_file.unlink(missing_ok=True)
    return True

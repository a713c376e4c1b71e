"""A real single-node Apache Kafka broker (KRaft mode, no ZooKeeper) for local work and tests, without
Docker: ``org.apache.kafka:kafka_2.13`` and its runtime dependencies from Maven Central (the pinned
classpath in ``kafka_classpath.py``, cached in ``~/.m2``), run on Java 17+ as the same dedicated system user as the search nodes when invoked as root."""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, NodeError
from . import kafka_tls
from .process import command_as, port_in_use, read_pid, stop
from .kafka_classpath import CLASSPATHS
from .maven import Artifact, fetch, mirror
from .java import JavaRange, find_java, runnable_copy
from .provision import state_root

log = logging.getLogger(__name__)

DEFAULT_VERSION = "4.3.1"
_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>
<groupId>splade-bridge</groupId><artifactId>kafka-broker</artifactId><version>1</version><dependencies>
<dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{version}</version></dependency>
<dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j-impl</artifactId><version>2.25.4</version>
</dependency></dependencies></project>
"""
_LOG4J = """status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = {dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
"""


@dataclass(frozen=True)
class BrokerSpec:
    version: str = DEFAULT_VERSION
    port: int = 9092             # clients; the KRaft controller listens on port + 1
    heap: str = "512m"
    data_dir: Path | None = None
    java_home: Path | None = None
    user: str = "splade-bridge"
    secure: bool = False         # clients on SASL_SSL (kafka_tls); the broker's own traffic on port + 2

    def __post_init__(self) -> None:
        if not re.match(r"^\d+\.\d+\.\d+$", self.version):
            raise ConfigError(f"version must look like {DEFAULT_VERSION}, got {self.version!r}")
        if not 1 <= self.port < 65535:
            raise ConfigError(f"port must be in 1..65534, got {self.port}")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def broker_dir(self) -> Path:
        return Path(self.data_dir) if self.data_dir else state_root() / "kafka" / f"kafka-{self.version}-{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.broker_dir / "broker.pid"


@dataclass(frozen=True)
class BrokerInfo:
    bootstrap: str
    pid: int
    version: str
    seconds: float
    already_running: bool


def install(version: str) -> Path:
    """The broker's jars (``lib/``): the pinned classpath over HTTPS, or (other versions) resolved by ``mvn``."""
    home = state_root() / "dist" / f"kafka-{version}"
    if (home / ".splade-bridge-installed").exists():
        return home
    tmp = home.with_name(home.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "lib").mkdir(parents=True)
    if version in CLASSPATHS:
        log.info("downloading Kafka %s (%d jars) from %s", version, len(CLASSPATHS[version]), mirror())
        for coords in CLASSPATHS[version]:
            jar = fetch(Artifact.parse(coords))
            shutil.copy(jar, tmp / "lib" / jar.name)
    else:
        _resolve_with_maven(version, tmp)
    (tmp / ".splade-bridge-installed").write_text(version)
    shutil.rmtree(home, ignore_errors=True)
    tmp.rename(home)
    return home


def _resolve_with_maven(version: str, tmp: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise NodeError(f"Kafka {version}'s classpath is not pinned in splade-bridge (pinned: "
                        f"{', '.join(CLASSPATHS)}) and Maven (mvn) is not installed to resolve it: use "
                        f"Kafka {DEFAULT_VERSION} (--server-version) or install Maven")
    (tmp / "pom.xml").write_text(_POM.format(version=version))
    log.info("resolving org.apache.kafka:kafka_2.13:%s and its dependencies with Maven", version)
    proc = subprocess.run([mvn, "-B", "-q", "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy-dependencies",
                           "-DoutputDirectory=lib", "-DincludeScope=runtime"], cwd=tmp, capture_output=True, text=True)
    if proc.returncode != 0 or not list((tmp / "lib").glob("kafka_2.13-*.jar")):
        errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "[ERROR]" in ln]
        raise NodeError(f"could not download Kafka {version} from Maven Central: "
                        f"{(errors[0] if errors else 'mvn exited with ' + str(proc.returncode))[-300:]}")


def _properties(spec: BrokerSpec, made: kafka_tls.Secrets | None = None) -> str:
    controller = spec.port + 1
    listeners = kafka_tls.broker_properties(spec.port, made) if made else [
        f"listeners=PLAINTEXT://127.0.0.1:{spec.port},CONTROLLER://127.0.0.1:{controller}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{spec.port}",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT", "inter.broker.listener.name=PLAINTEXT"]
    return "\n".join([
        "process.roles=broker,controller", "node.id=1", f"controller.quorum.voters=1@127.0.0.1:{controller}",
        *listeners, "controller.listener.names=CONTROLLER", f"log.dirs={spec.broker_dir / 'data'}", "num.partitions=1",
        "offsets.topic.replication.factor=1", "offsets.topic.num.partitions=3",
        "transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1",
        "group.initial.rebalance.delay.ms=0", ""])


def _java(spec: BrokerSpec, home: Path, java_home: Path, *args: str, launcher: tuple[str, ...] = ()) -> list[str]:
    env = {"JAVA_HOME": str(java_home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    argv = [*launcher, str(java_home / "bin" / "java"), f"-Xms{spec.heap}", f"-Xmx{spec.heap}",
            f"-Dlog4j2.configurationFile={spec.broker_dir / 'log4j2.properties'}", "-cp", f"{home / 'lib'}/*", *args]
    return command_as(spec.user, env, argv, owned=(spec.broker_dir,))


def status(spec: BrokerSpec) -> dict:
    pid = read_pid(spec.pid_file)
    return {"running": bool(pid and port_in_use(spec.port)), "pid": pid, "bootstrap": spec.bootstrap,
            "version": spec.version, "broker_dir": str(spec.broker_dir)}


def up(spec: BrokerSpec, timeout: float = 120.0) -> BrokerInfo:
    """Start the broker (idempotent); returns once it accepts clients."""
    started = time.monotonic()
    pid = read_pid(spec.pid_file)
    if pid and port_in_use(spec.port):
        return BrokerInfo(spec.bootstrap, pid, spec.version, time.monotonic() - started, True)
    for port in (spec.port, spec.port + 1, *((spec.port + 2,) if spec.secure else ())):
        if port_in_use(port):
            raise NodeError(f"port {port} is already taken by another process: stop it or pass --port")
    home = install(spec.version)
    java_home = runnable_copy(find_java(JavaRange(17), spec.java_home), state_root(), os.geteuid() == 0).home
    bd = spec.broker_dir
    (bd / "data").mkdir(parents=True, exist_ok=True)
    made = kafka_tls.ensure(bd, java_home) if spec.secure else None
    (bd / "server.properties").write_text(_properties(spec, made))
    (bd / "server.properties").chmod(0o600)  # it holds the SASL and keystore passwords when secure
    (bd / "log4j2.properties").write_text(_LOG4J.format(dir=bd))
    log_file = bd / "server.log"
    if not (bd / "data" / "meta.properties").exists():
        cluster_id = subprocess.run(_java(spec, home, java_home, "kafka.tools.StorageTool", "random-uuid"),
                                    capture_output=True, text=True).stdout.strip().splitlines()[-1]
        proc = subprocess.run(_java(spec, home, java_home, "kafka.tools.StorageTool", "format", "-t", cluster_id,
                                    "-c", str(bd / "server.properties")), capture_output=True, text=True)
        if proc.returncode != 0:
            raise NodeError(f"formatting the broker's storage failed: {(proc.stderr or proc.stdout)[-500:]}")
    log_file.unlink(missing_ok=True)
    spec.pid_file.unlink(missing_ok=True)
    # the shell writes its pid and becomes the JVM: the pid file names the broker itself
    launcher = ("sh", "-c", 'echo $$ > "$0"; exec "$@"', str(spec.pid_file))
    with open(bd / "stdout.log", "w") as out:
        subprocess.Popen(_java(spec, home, java_home, "kafka.Kafka", str(bd / "server.properties"), launcher=launcher),
                         stdout=out, stderr=subprocess.STDOUT, cwd=bd, start_new_session=True)
    deadline = started + timeout
    while time.monotonic() < deadline:
        pid = read_pid(spec.pid_file)
        text = log_file.read_text(errors="replace") if log_file.exists() else ""
        if pid and "Kafka Server started" in text and port_in_use(spec.port):
            return BrokerInfo(spec.bootstrap, pid, spec.version, time.monotonic() - started, False)
        if spec.pid_file.exists() and pid is None:
            raise NodeError(f"the Kafka broker died during start; log tail:\n{_tail(bd)}")
        time.sleep(0.3)
    raise NodeError(f"the Kafka broker did not start within {timeout:.0f}s; log tail:\n{_tail(bd)}")


def client_config(spec: BrokerSpec) -> str:
    """The properties a client needs for the secured broker of ``spec`` (made by ``up``), ``key=value`` lines."""
    made = kafka_tls.load(spec.broker_dir) if spec.secure else None
    if made is None:
        raise NodeError(f"no secured broker was started in {spec.broker_dir}: run kafka up --secure first")
    return kafka_tls.client_properties(spec.bootstrap, made)


def _tail(bd: Path, lines: int = 20) -> str:
    chunks = []
    for name in ("server.log", "stdout.log"):
        p = bd / name
        if p.exists():
            chunks += p.read_text(errors="replace").splitlines()[-lines:]
    return "\n".join(chunks[-lines:])


def down(spec: BrokerSpec, timeout: float = 60.0) -> bool:
    """Stop the broker (SIGTERM: a controlled shutdown); False when it was not running."""
    return stop(spec.pid_file, timeout, what="Kafka broker")

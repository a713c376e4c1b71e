"""What it takes to provision each engine from Maven Central, as data.

Both engines publish an ``integ-test-zip`` distribution (no JDK, no security plugin, only the
transport module) and the ``mapper-extras`` module as a client jar; the bridge needs that module for
``rank_feature``/``rank_features``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class EngineRecipe:
    name: str
    dist_group: str
    plugin_group: str
    executable: str
    java_home_var: str
    version_key: str  # key of the plugin descriptor that names the server version
    default_version: str

    def plugin_classname(self, version: str) -> str:
        major = major_of(version)
        if self.name == "opensearch" and major >= 3:
            return "org.opensearch.index.mapper.MapperExtrasModulePlugin"
        return f"{self.plugin_group.rsplit('.', 1)[0]}.index.mapper.MapperExtrasPlugin"

    def min_java(self, version: str) -> int:
        major = major_of(version)
        if self.name == "opensearch":
            return 21 if major >= 3 else 11
        return 17 if major >= 8 else 11

    def descriptor_java(self, version: str) -> str:
        return str(self.min_java(version))


RECIPES: dict[str, EngineRecipe] = {
    "opensearch": EngineRecipe(
        name="opensearch",
        dist_group="org.opensearch.distribution.integ-test-zip",
        plugin_group="org.opensearch.plugin",
        executable="bin/opensearch",
        java_home_var="OPENSEARCH_JAVA_HOME",
        version_key="opensearch.version",
        # newest 2.19.x served by Maven Central that starts on the default JDK 17
        default_version="2.19.6",
    ),
    "elasticsearch": EngineRecipe(
        name="elasticsearch",
        dist_group="org.elasticsearch.distribution.integ-test-zip",
        plugin_group="org.elasticsearch.plugin",
        executable="bin/elasticsearch",
        java_home_var="ES_JAVA_HOME",
        version_key="elasticsearch.version",
        default_version="7.17.29",
    ),
}

_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


def major_of(version: str) -> int:
    if not _VERSION.match(version):
        raise ConfigError(f"version must look like 2.19.6, got {version!r}")
    return int(version.split(".", 1)[0])

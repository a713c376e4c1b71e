"""What it takes to provision each engine from Maven Central, as data.

Both engines publish an ``integ-test-zip`` distribution (no JDK, no security plugin, only the
transport module) and the ``mapper-extras`` module as a client jar; the bridge needs that module for
``rank_feature``/``rank_features``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ConfigError
from .java import JavaRange


@dataclass(frozen=True)
class EngineRecipe:
    name: str
    dist_group: str
    plugin_group: str
    executable: str
    java_home_var: str
    version_key: str  # key of the plugin descriptor that names the server version
    default_version: str
    fallback_version: str | None = None  # run instead of the default when only a newer Java is found

    def plugin_classname(self, version: str) -> str:
        major = major_of(version)
        if self.name == "opensearch" and major >= 3:
            return "org.opensearch.index.mapper.MapperExtrasModulePlugin"
        return f"{self.plugin_group.rsplit('.', 1)[0]}.index.mapper.MapperExtrasPlugin"

    def java(self, version: str) -> JavaRange:
        """The Java versions the server runs on. OpenSearch 2.x and Elasticsearch 7.x install a
        SecurityManager, which Java 24 removed: they stop at Java 23."""
        major = major_of(version)
        if self.name == "opensearch":
            return JavaRange(21) if major >= 3 else JavaRange(11, 23)
        return JavaRange(17) if major >= 8 else JavaRange(11, 23)

    def builds_thai(self, version: str) -> bool:
        """Builds a Thai analyzer for every new index (OpenSearch 3.x): needs a Thai word-break dictionary."""
        return self.name == "opensearch" and major_of(version) >= 3

    def descriptor_java(self, version: str) -> str:
        return str(self.java(version).min_major)


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
        fallback_version="3.8.0",  # runs on Java 24+, which 2.x cannot
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

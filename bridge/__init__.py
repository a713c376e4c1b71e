"""splade-bridge: SPLADE learned-sparse retrieval scored natively by OpenSearch/Elasticsearch.

The public API (``bridge.connect``, ``bridge.load_encoder``, ``bridge.ingest``, ``bridge.search``, ...) is
defined in ``bridge.api`` and re-exported here on first use, so ``import bridge`` stays cheap (torch is
loaded only when an encoder is).
"""
import importlib
import logging

from .version import __version__

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str):
    api = importlib.import_module(".api", __name__)  # the module object even while it is being imported
    if name in getattr(api, "__all__", ()):
        return getattr(api, name)
    raise AttributeError(f"module 'bridge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(importlib.import_module(".api", __name__).__all__))

"""splade-bridge: SPLADE learned-sparse retrieval scored natively by OpenSearch/Elasticsearch.

The public API (``bridge.connect``, ``bridge.load_encoder``, ``bridge.ingest``, ``bridge.search``, ...) is
defined in ``bridge.api`` and re-exported here on first use, so ``import bridge`` stays cheap (torch is
loaded only when an encoder is).
"""
import importlib
import importlib.util
import logging

from .version import __version__

logging.getLogger(__name__).addHandler(logging.NullHandler())


def __getattr__(name: str):
    # a submodule not imported yet (``from . import x`` asks here first) is not an API name: let the
    # import system load it, without importing the API (whose imports may be under way)
    if not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is None:
        api = importlib.import_module(".api", __name__)
        if name in api.__all__:
            return getattr(api, name)
    raise AttributeError(f"module 'bridge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(importlib.import_module(".api", __name__).__all__))

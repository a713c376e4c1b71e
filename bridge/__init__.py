"""splade-bridge: SPLADE learned-sparse retrieval scored natively by OpenSearch/Elasticsearch."""
import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

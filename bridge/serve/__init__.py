"""HTTP query-rewriting service (``splade-bridge serve``); needs the ``serve`` extra."""

"""Stream ingest workers: ``splade-bridge worker`` joins a Kafka consumer group and feeds the same ingest
pipeline as ``splade-bridge ingest`` (the message source and the offset commits are the only new parts).
Like the service, this layer imports only ``bridge.api``; it needs the ``[kafka]`` extra."""

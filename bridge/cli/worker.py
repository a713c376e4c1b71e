"""``splade-bridge worker``: a Kafka consumer-group ingest worker."""
from __future__ import annotations

import json
import logging
import signal
import threading

import click

from .. import api
from .options import (BACKEND, CHUNK_SIZE, KAFKA, KAFKA_CONFIG, MAX_RETRIES, MODEL, PRECISION, WRITE,
                      connection_options, encoding, long_documents, long_documents_options, window_option)

log = logging.getLogger(__name__)


def kafka_properties(bootstrap: str | None, kafka_config: str | None) -> dict:
    """The client properties of --kafka-config, --kafka overriding its bootstrap.servers."""
    from ..worker.client_config import read

    properties = read(kafka_config) if kafka_config else {}
    if bootstrap:
        properties["bootstrap.servers"] = bootstrap
    if not properties.get("bootstrap.servers"):
        raise click.UsageError("give --kafka, or a --kafka-config file with bootstrap.servers")
    return properties


@click.command("worker")
@click.argument("name")
@KAFKA
@KAFKA_CONFIG
@click.option("--topic", required=True,
              help="Topic of documents (one JSON document per message, keyed by id); several, comma-separated, or a "
                   "pattern starting with ^ (Kafka Connect's topics / topics.regex; a pattern skips *.deadletter).")
@click.option("--group", required=True, help="Consumer group: run N workers with the same group to scale out.")
@click.option("--dead-letter-topic", default=None,
              help="Where rejected messages go [default: <their topic>.deadletter].")
@MODEL
@BACKEND
@PRECISION
@click.option("--id-field", default="_id", show_default=True, help="Record field holding the document id.")
@click.option("--id-from-key", is_flag=True, help="Take the document id from the message key (Kafka Connect's "
                                                  "key.ignore=false); a record's own id field is then ignored.")
@click.option("--on-null", type=click.Choice(["delete", "ignore", "fail"]), default="delete", show_default=True,
              help="A message with a null value (tombstone): delete the key's document, skip it, or treat it as "
                   "bad (Kafka Connect's behavior.on.null.values).")
@click.option("--errors-tolerance", type=click.Choice(["all", "none"]), default="all", show_default=True,
              help="all: bad messages go to the dead-letter topic and the stream goes on; none: stop at the first, "
                   "with nothing from it on committed (Kafka Connect's errors.tolerance).")
@WRITE
@click.option("--text-field", "text_fields", multiple=True, default=("title", "text"), show_default=True)
@click.option("--batch-size", default=1024, show_default=True, type=click.IntRange(1),
              help="Messages per poll; each batch is indexed, then its offsets are committed.")
@window_option(256, "smaller than ingest's: a poll's documents are indexed and committed sooner")
@CHUNK_SIZE
@click.option("--concurrency", default=2, show_default=True, type=click.IntRange(1, 16),
              help="Bulk requests in flight at once.")
@MAX_RETRIES
@click.option("--threads", type=click.IntRange(1), default=None,
              help="Threads of the model's backend (ONNX Runtime, OpenVINO or torch) [default: the CPU's cores].")
@click.option("--metrics-port", type=int, default=None,
              help="Serve Prometheus /metrics, /healthz (liveness) and /readyz (readiness) on this port.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True,
              help="Interface for --metrics-port (0.0.0.0 in a container: the image sets it).")
@click.option("--consumer-option", "consumer_options", multiple=True, metavar="KEY=VALUE",
              help="Extra librdkafka consumer setting, e.g. session.timeout.ms=10000 (repeatable; no secrets: "
                   "those go in --kafka-config).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="How the summary printed at exit looks.")
@long_documents_options
@connection_options()
@click.pass_obj
def worker_cmd(settings, name, bootstrap, kafka_config, topic, group, dead_letter_topic, model, backend, precision, id_field, id_from_key,
               on_null, errors_tolerance, write, text_fields, batch_size,
               window, chunk_size, concurrency, max_retries, threads, metrics_port, metrics_host, consumer_options, fmt, long_documents_mode,
               truncate):
    """Consume TOPIC as a member of GROUP and keep index NAME up to date (created like `ingest` does).

    Offsets are committed only after the cluster acknowledged (or the dead-letter topic took) every message
    before them; index actions carry the document id and the partition offset as an external version, so
    redelivery overwrites and a replayed older message never wins. SIGTERM finishes the batch at hand,
    commits and exits 0."""
    try:
        from ..worker.client_config import refuse_secret
        from ..worker.consumer import WorkerConfig, WorkerSummary, make_consumer, make_producer, run
        from ..worker.metrics import WorkerMetrics
    except ImportError as exc:
        raise api.MissingExtra(exc.name, "kafka") from None
    pairs = []
    for option in consumer_options:
        if "=" not in option:
            raise click.BadParameter(f"{option!r} is not KEY=VALUE", param_hint="--consumer-option")
        pairs.append(tuple(part.strip() for part in option.split("=", 1)))
        refuse_secret(pairs[-1][0], "--consumer-option")
    properties = kafka_properties(bootstrap, kafka_config)
    cfg = WorkerConfig(bootstrap=properties["bootstrap.servers"], topic=topic, group=group, dead_letter_topic=dead_letter_topic,
                       batch_size=batch_size, consumer_options=tuple(pairs), client_options=tuple(properties.items()),
                       id_from_key=id_from_key, on_null=on_null, errors_tolerance=errors_tolerance)
    ingest = api.IngestConfig(id_field=id_field, text_fields=tuple(text_fields), window=window, chunk_size=chunk_size,
                              concurrency=concurrency, retry=settings.retry_policy(max_retries=max_retries),
                              refresh=False, unique_ids=False, write=write)
    cluster = settings.client()
    encoder, stamp = api.open_for_ingest(cluster, name, model=model, create=write == "index", text_fields=text_fields,
                                         long_documents=long_documents(long_documents_mode, truncate),
                                         encoder_options={**encoding(backend, precision),
                                                          **({"threads": threads} if threads else {})})
    metrics = WorkerMetrics()
    server = metrics.serve(metrics_port, metrics_host) if metrics_port else None
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    summary = WorkerSummary()
    consumer, producer = make_consumer(cfg), make_producer(cfg)
    log.warning("worker in group %s: topic %s -> index %s (model %s)", group, topic, name, encoder.stamp.model)
    if len(cfg.topics) > 1 or topic.startswith("^"):
        log.warning("several topics: a document's versions are its messages' offsets, which compare only within "
                    "one partition; every id must always come through the same topic")
    try:
        run(cluster, name, encoder, stamp, cfg, ingest, consumer, producer, metrics, stop, summary)
    finally:
        consumer.close()  # leaves the group: its partitions move to the other members at once
        producer.flush(30)
        if server:
            server.shutdown()
    out = summary.as_dict()
    click.echo(json.dumps(out) if fmt == "json" else
               f"consumed {out['consumed']}, indexed {out['indexed']}, deleted {out['deleted']}, already applied "
               f"{out['already_applied']}, dead-lettered {out['dead_lettered']} in {out['batches']} batches")

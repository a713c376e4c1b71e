"""The worker loop: poll a batch, run it through the ingest pipeline, send rejected messages to the
dead-letter topic, then commit — offsets move only past messages the cluster acknowledged (or that were
dead-lettered and the dead-letter topic acknowledged). While a batch is indexed the consumer keeps polling with
its partitions paused (``polling``: a batch of any length never outlasts ``max.poll.interval.ms``); a
revocation waits for the batch at hand and commits it first, so a rebalance always finds the previous batch
committed, and SIGTERM ends after the batch at hand. If the cluster stays away past the retry policy,
consumption pauses while the cluster is probed with backoff, and the same batch is indexed again (without the
partitions revoked meanwhile): nothing is committed past unacknowledged work."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from .. import api
from ..api import IngestAborted, IngestConfig, describe
from . import batches, polling
from .messages import ON_NULL, Position, dead_letter_headers
from .metrics import WorkerMetrics

log = logging.getLogger(__name__)

REJECTED = ("invalid", "refused")


@dataclass(frozen=True)
class WorkerConfig:
    bootstrap: str
    topic: str
    group: str
    dead_letter_topic: str | None = None     # default <topic>.deadletter
    batch_size: int = 1024                   # messages per poll, then one pipeline run and one commit
    poll_seconds: float = 1.0
    consumer_options: tuple[tuple[str, str], ...] = ()
    client_options: tuple[tuple[str, str], ...] = ()   # --kafka-config: the consumer's and the producer's
    id_from_key: bool = False                # the document id is the message key (Connect's key.ignore=false)
    on_null: str = "delete"                  # a tombstone: delete | ignore | fail (behavior.on.null.values)
    errors_tolerance: str = "all"            # all: bad messages dead-lettered; none: stop at the first

    def __post_init__(self) -> None:
        if not (self.bootstrap and self.topic and self.group):
            raise api.ConfigError("bootstrap servers, topic and group are all needed")
        if self.batch_size < 1 or self.poll_seconds <= 0:
            raise api.ConfigError("batch_size must be >= 1 and poll_seconds > 0")
        if self.on_null not in ON_NULL or self.errors_tolerance not in ("all", "none"):
            raise api.ConfigError(f"on_null must be one of {', '.join(ON_NULL)}, errors_tolerance all or none")

    @property
    def topics(self) -> tuple[str, ...]:
        """Comma-separated names (Connect's ``topics``); one starting with ``^`` is a pattern (``topics.regex``)."""
        return tuple(t.strip() for t in self.topic.split(",") if t.strip())

    def own_dead_letters(self, topic: str) -> bool:
        """A topic a pattern matched that is a dead-letter topic of this worker's (never read back)."""
        return any(t.startswith("^") for t in self.topics) and (
            topic.endswith(".deadletter") or topic == self.dead_letter_topic)

    def dead_letters(self, topic: str) -> str:
        """Where a rejected message of ``topic`` goes."""
        return self.dead_letter_topic or f"{topic}.deadletter"


class BadMessage(api.BridgeError):
    """A bad message with ``errors_tolerance="none"``: the worker stops before it."""


@dataclass
class WorkerSummary:
    consumed: int = 0
    indexed: int = 0
    deleted: int = 0
    already_applied: int = 0   # redelivered or replayed messages the index already held (or held newer)
    dead_lettered: int = 0
    ignored: int = 0           # messages skipped: null values (on_null="ignore"), dead letters a pattern matched
    batches: int = 0
    rewinds: int = 0           # batches retried after the cluster stayed away past the retry policy
    rebalances: int = 0
    partitions: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def make_consumer(cfg: WorkerConfig):
    """The group's consumer, not yet subscribed (``run`` subscribes it)."""
    from confluent_kafka import Consumer

    options = {**dict(cfg.client_options), "bootstrap.servers": cfg.bootstrap, "group.id": cfg.group,
               "enable.auto.commit": False, "auto.offset.reset": "earliest", "enable.partition.eof": False,
               **dict(cfg.consumer_options)}
    return Consumer(options, logger=logging.getLogger("bridge.worker.kafka"))


def _subscribe(consumer, cfg: WorkerConfig, metrics: WorkerMetrics, summary: WorkerSummary, settle) -> None:
    def assigned(consumer, partitions):
        summary.rebalances += 1
        metrics.rebalances.labels("assign").inc()
        names = sorted(f"{p.topic}[{p.partition}]" for p in partitions)
        metrics.set_state(assigned=names)
        log.warning("rebalance: assigned %s", ", ".join(names) or "nothing")

    def revoked(consumer, partitions):
        metrics.rebalances.labels("revoke").inc()
        settle()  # the batch at hand indexed and committed before the partitions go
        log.warning("rebalance: revoked %s (every batch before was acknowledged and committed)",
                    ", ".join(sorted(f"{p.topic}[{p.partition}]" for p in partitions)) or "nothing")

    consumer.subscribe(list(cfg.topics), on_assign=assigned, on_revoke=revoked)


def make_producer(cfg: WorkerConfig):
    from confluent_kafka import Producer

    return Producer({**dict(cfg.client_options), "bootstrap.servers": cfg.bootstrap, "enable.idempotence": True,
                     "acks": "all"}, logger=logging.getLogger("bridge.worker.kafka"))


def run(client, index_name: str, encoder, stamp, cfg: WorkerConfig, ingest: IngestConfig, consumer, producer,
        metrics: WorkerMetrics, stop: threading.Event, summary: WorkerSummary | None = None) -> WorkerSummary:
    """Consume until ``stop`` is set; the batch at hand is finished and committed first."""
    summary = summary if summary is not None else WorkerSummary()
    current: dict = {}  # the batch in flight: its InFlight and positions

    def finish() -> None:  # dead letters, commit and counts of the batch in flight, once
        flight, positions = current["flight"], current["positions"]
        if flight.committed:
            return
        result, outcomes = flight.outcome()
        rejected = [o for o in outcomes if o.status in REJECTED]
        if rejected and cfg.errors_tolerance == "none":
            _stop_before(consumer, positions, rejected)
        _dead_letter(producer, cfg.dead_letters, rejected, positions)
        _commit(consumer, positions)
        flight.committed = True
        summary.ignored += len(positions) - current["records"]
        _count(summary, metrics, result, len(positions), len(rejected), positions)

    def settle() -> None:  # on revocation: a batch that cannot finish (cluster away) stays uncommitted
        if current and not current["flight"].committed:
            try:
                finish()
            except (IngestAborted, api.BridgeError) as exc:
                log.warning("the batch at hand was not committed (%s): its partitions' new owner delivers it again",
                            exc)

    _subscribe(consumer, cfg, metrics, summary, settle)
    metrics.set_state(status="running")
    while not stop.is_set():
        messages = consumer.consume(cfg.batch_size, timeout=cfg.poll_seconds)
        batch = batches.make_batch(consumer, messages, ingest.id_field, cfg.id_from_key, cfg.on_null,
                                   skip=cfg.own_dead_letters)
        if batch is None:
            _update_lag(consumer, metrics)
            continue
        metrics.uncommitted.set(len(batch[0]))
        while batch is not None and not stop.is_set():
            records, positions = batch

            def index(records=records) -> tuple:
                outcomes: list = []
                result = api.ingest(client, index_name, records, encoder=encoder, stamp=stamp, config=ingest,
                                    acknowledge=outcomes.extend, observe=metrics.observe)
                return result, outcomes

            flight = polling.InFlight(index)
            current.update(flight=flight, positions=positions, records=len(records))
            polling.hold(consumer, lambda: flight.done)  # polled meanwhile: the group keeps this member
            try:
                finish()
            except IngestAborted as exc:
                summary.rewinds += 1
                _pause_until_reachable(consumer, client, exc, metrics, stop)
                batch = batches.still_assigned(consumer, records, positions)  # the same batch again, from memory
                continue
            finally:
                current.clear()
            batch = None
        metrics.uncommitted.set(0)
        metrics.set_state(last_batch=time.time())
        _update_lag(consumer, metrics)
    metrics.set_state(status="stopping")
    return summary


def _commit(consumer, positions: dict) -> None:
    """Commit past the batch; a refused commit (the group moved on: a rebalance) only means the new owner
    delivers the batch again, which the external versions make harmless."""
    from confluent_kafka import KafkaException

    try:
        consumer.commit(offsets=batches.next_offsets(positions.values()), asynchronous=False)
    except KafkaException as exc:
        log.warning("commit refused (%s): the partitions' new owner will deliver this batch again", exc)


def _stop_before(consumer, positions: dict, rejected: list) -> None:
    """Commit what comes before the first bad message of each partition, then stop (``BadMessage``)."""
    first: dict[tuple[str, int], Position] = {}
    for outcome in sorted(rejected, key=lambda o: o.line):
        where = positions[outcome.line]
        first.setdefault((where.topic, where.partition), where)
    before = [p for p in positions.values()
              if (p.topic, p.partition) not in first or p.offset < first[(p.topic, p.partition)].offset]
    if before:
        _commit(consumer, {n: p for n, p in enumerate(before)})
    bad = min(rejected, key=lambda o: o.line)
    where = positions[bad.line]
    raise BadMessage(f"{where.topic}[{where.partition}] offset {where.offset}: {bad.reason}; stopped there "
                     "(--errors-tolerance none): nothing from it on is committed")


def _dead_letter(producer, topic_for, rejected: list, positions: dict) -> None:
    """Send every rejected message to the dead-letter topic and wait until the broker has them all. A fixed
    cause's dead letters are replayed by a worker reading that topic: each keeps its first offset's version."""
    failures: list = []

    def delivered(err, msg):
        if err is not None:
            failures.append(err)

    now = datetime.now(timezone.utc)
    for outcome in rejected:  # the message as it came, whole, with where it was and why in its headers
        where = positions[outcome.line]
        producer.produce(topic_for(where.topic), key=where.key, value=where.value,
                         headers=dead_letter_headers(outcome, where, now), on_delivery=delivered)
    if rejected and (producer.flush(60) or failures):
        raise api.BridgeError(f"the dead-letter topic did not take {len(rejected)} messages "
                              f"({failures[:1] or 'timed out'}); offsets were not committed")


def _pause_until_reachable(consumer, client, exc: IngestAborted, metrics: WorkerMetrics,
                           stop: threading.Event) -> None:
    """Consume nothing and probe the cluster with backoff until it answers, polling with the partitions paused
    meanwhile (``polling.hold``) so that the group keeps this member however long the cluster is away."""
    metrics.set_state(paused=True)
    log.error("%s; consumption paused, nothing committed past acknowledged work", describe(exc.cause))
    wait = 1.0
    while True:
        deadline = time.monotonic() + wait
        polling.hold(consumer, lambda: stop.is_set() or time.monotonic() >= deadline)  # the group keeps this member
        if stop.is_set():
            break
        try:
            client.info()
            break
        except Exception as probe:
            wait = min(wait * 2, 30.0)
            log.warning("cluster still unavailable (%s); next probe in %.0fs", describe(probe), wait)
    metrics.set_state(paused=False)
    log.warning("cluster reachable again; indexing the batch at hand again")


def _count(summary: WorkerSummary, metrics: WorkerMetrics, result, consumed: int, rejected: int,
           positions: dict) -> None:
    summary.batches += 1
    summary.consumed += consumed
    summary.indexed += result.indexed
    summary.deleted += result.deleted
    summary.already_applied += result.already_applied
    summary.dead_lettered += rejected
    for p in positions.values():
        key = f"{p.topic}[{p.partition}]"
        summary.partitions[key] = summary.partitions.get(key, 0) + 1
    metrics.consumed.inc(consumed)
    for outcome, n in (("indexed", result.indexed), ("deleted", result.deleted),
                       ("already_applied", result.already_applied), ("dead_lettered", rejected)):
        metrics.documents.labels(outcome).inc(n)
    metrics.bulk_retries.inc(result.request_retries + result.document_resends)


def _update_lag(consumer, metrics: WorkerMetrics) -> None:
    for tp in consumer.assignment():
        try:
            low, high = consumer.get_watermark_offsets(tp, cached=True)
            position = consumer.position([tp])[0].offset
        except Exception:  # metadata not there yet
            continue
        if high >= 0:
            metrics.lag.labels(tp.topic, str(tp.partition)).set(max(0, high - (position if position >= 0 else low)))

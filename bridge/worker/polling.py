"""Staying in the group while a batch takes long: librdkafka expels a member that does not call poll for
``max.poll.interval.ms`` (300 s), and a batch of a big model on a few cores can take longer. So a batch is
indexed in a thread (``InFlight``) while the worker's own thread keeps polling (``hold``) with every assigned
partition paused: such a poll delivers nothing, it only proves the member alive (and runs rebalance callbacks).
A message of a partition assigned during a rebalance is handed back — its partition is paused and sought back to
it — so it is read again, in order, after the batch."""
from __future__ import annotations

import threading
from typing import Callable


class InFlight:
    """``work()`` running in a thread; ``outcome()`` waits for it and returns its result (or raises what it
    raised)."""

    def __init__(self, work: Callable[[], object]):
        self._result: object = None
        self._error: BaseException | None = None
        self.committed = False   # set when a revocation committed the batch first
        self._thread = threading.Thread(target=self._run, args=(work,), name="splade-batch", daemon=True)
        self._thread.start()

    def _run(self, work) -> None:
        try:
            self._result = work()
        except BaseException as exc:  # handed to the caller by outcome()
            self._error = exc

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def outcome(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._result


def hold(consumer, until: Callable[[], bool], poll_seconds: float = 0.2) -> None:
    """Poll, delivering nothing, until ``until()``: the assigned partitions paused meanwhile, resumed after."""
    from confluent_kafka import TopicPartition

    consumer.pause(consumer.assignment())
    try:
        while not until():
            message = consumer.poll(poll_seconds)
            if message is None or message.error():
                continue
            where = TopicPartition(message.topic(), message.partition(), message.offset())
            consumer.pause([TopicPartition(message.topic(), message.partition())])
            consumer.seek(where)  # read again from here once resumed
    finally:
        consumer.resume(consumer.assignment())

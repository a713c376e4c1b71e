"""The retry policy at the cluster edge: which failures are transient, and a tenacity ``Retrying`` that
waits with exponential backoff and gives up after ``RetryPolicy.retry_for`` seconds."""
from __future__ import annotations

import logging
import socket
import ssl
import urllib.error

from tenacity import Retrying, retry_if_exception, stop_before_delay, wait_exponential_jitter

from .config import RetryPolicy

log = logging.getLogger(__name__)

TRANSIENT_STATUS = frozenset({429, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the cluster was unreachable, timed out, restarting or overloaded."""
    from .backends import exceptions, status_of

    connection_errors, _, transport_errors = exceptions()
    if isinstance(exc, ssl.SSLError) or type(exc).__name__ == "SSLError":
        return False  # a certificate problem does not heal by waiting
    if isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, ssl.SSLError):
        return False
    if isinstance(exc, connection_errors):
        return True
    if isinstance(exc, transport_errors):
        return status_of(exc) in TRANSIENT_STATUS
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code in TRANSIENT_STATUS
    return isinstance(exc, (urllib.error.URLError, ConnectionError, socket.timeout, TimeoutError))


def retrying(policy: RetryPolicy, what: str, on_retry=None) -> Retrying:
    """Attempts of one operation; the last error is re-raised when ``policy.retry_for`` is used up."""
    def before_sleep(state) -> None:
        if on_retry:
            on_retry()
        exc = state.outcome.exception()
        log.warning("%s failed (%s: %s); attempt %d, retrying in %.1fs (giving up after %gs)", what,
                    type(exc).__name__, _short(exc), state.attempt_number, state.upcoming_sleep, policy.retry_for)

    backoff = wait_exponential_jitter(multiplier=policy.initial_backoff, max=policy.max_backoff,
                                      jitter=policy.initial_backoff)

    def wait(state) -> float:  # the last wait is shortened so the final attempt lands at retry_for
        return min(backoff(state), max(0.0, policy.retry_for - (state.seconds_since_start or 0.0)))

    return Retrying(stop=stop_before_delay(policy.retry_for + 0.001), wait=wait,
                    retry=retry_if_exception(is_transient), before_sleep=before_sleep, reraise=True)


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "reason", None) or exc)
    return text.rsplit(": ", 1)[-1][:200]

"""Retrying one operation with exponential backoff until ``RetryPolicy.retry_for`` is used up.

The helper knows nothing of clusters: what counts as transient (``is_transient``) and how to wait
(``sleep``) are parameters, tenacity style, so tests pass a fake clock instead of sleeping.
"""
from __future__ import annotations

import logging
import time
from typing import Callable, TypeVar

from tenacity import Retrying, retry_if_exception, wait_exponential, wait_random

from ..config import RetryPolicy

log = logging.getLogger(__name__)

T = TypeVar("T")


def retrying(policy: RetryPolicy, what: str, is_transient: Callable[[BaseException], bool],
             on_retry: Callable[[], None] | None = None, sleep: Callable[[float], None] = time.sleep,
             clock: Callable[[], float] = time.monotonic) -> Retrying:
    """Attempts of one operation; the last error is re-raised once ``policy.retry_for`` seconds (by
    ``clock``) have passed since the first attempt."""
    started = clock()

    def before_sleep(state) -> None:
        if on_retry:
            on_retry()
        exc = state.outcome.exception()
        text = str(getattr(exc, "reason", None) or exc).rsplit(": ", 1)[-1][:200]
        log.warning("%s failed (%s: %s); attempt %d, retrying in %.1fs (giving up after %gs)", what,
                    type(exc).__name__, text, state.attempt_number, state.next_action.sleep, policy.retry_for)

    # initial * 2^(n-1) plus up to `initial` of jitter, capped (the same in tenacity 8 and 9)
    backoff = wait_exponential(multiplier=policy.initial_backoff, max=policy.max_backoff) + \
        wait_random(0, policy.initial_backoff)

    def wait(state) -> float:  # the last wait is shortened so the final attempt lands at retry_for
        return min(backoff(state), policy.max_backoff, max(0.0, policy.retry_for - (clock() - started)))

    def stop(state) -> bool:
        return clock() - started >= policy.retry_for

    return Retrying(stop=stop, wait=wait, sleep=sleep,
                    retry=retry_if_exception(is_transient), before_sleep=before_sleep, reraise=True)


def call(fn: Callable[[], T], policy: RetryPolicy, what: str, is_transient: Callable[[BaseException], bool],
         on_retry: Callable[[], None] | None = None, sleep: Callable[[float], None] = time.sleep,
         clock: Callable[[], float] = time.monotonic) -> T:
    """``fn()`` under ``retrying``: its result, or its last error once the policy gives up."""
    return retrying(policy, what, is_transient, on_retry, sleep, clock)(fn)

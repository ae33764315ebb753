"""Calls that outlast bad weather: a shared rate, a shared circuit breaker, an outage budget.

A read that fails after the client's own retries is asked again after a growing wait. While
most recent calls fail, the breaker pauses every worker at once (instead of each burning its
retries against a service that is down), and a `Retry-After` the service sends is honoured.
Only when no call at all has succeeded for the outage budget does the work give up.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable

from .errors import (
    InputError,
    PayamakError,
    SendOutcomeUnknownError,
    ServiceUnavailableError,
    SyncError,
    TransportError,
)

MAX_WORKERS = 64  # calls at once, at most: more only crowd the service (and this machine's threads)
PAGE_ATTEMPTS = 10  # one page failing this often, while others succeed, is left for the next run
FIRST_BACKOFF, MAX_BACKOFF = 0.25, 8.0
SYSTEM_UPDATING = 9  # the panel's "system is being updated": it passes


class OutageError(SyncError):
    """The service gave no successful answer for the whole outage budget."""


def transient(error: BaseException) -> bool:
    """Whether waiting may change the answer: the network, a 5xx, the panel updating itself; not
    an answer the client itself calls final (a redirect, a DTD, a value out of contract)."""
    if isinstance(error, SendOutcomeUnknownError):
        return False
    if isinstance(error, ServiceUnavailableError):
        return error.code == SYSTEM_UPDATING
    return isinstance(error, TransportError) and error.retryable


class RateLimiter:
    """At most `per_second` calls a second across all workers (None: no limit)."""

    def __init__(self, per_second: float | None):
        bad = isinstance(per_second, bool) or not isinstance(per_second, (int, float)) or not 0 < per_second < math.inf
        if per_second is not None and bad:
            raise InputError(
                f"rate caps the calls a second, above 0 (None: no cap), not {per_second!r}.",
                "سقف تعداد درخواست نامعتبر است",
            )
        self.interval = 1.0 / per_second if per_second else 0.0
        self._next = time.monotonic()
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
        time.sleep(max(0.0, slot - now))


class Breaker:
    """Shared by all workers: opens (pausing everyone) while most of the recent calls failed,
    for a pause that doubles while the trouble lasts; gives up after `give_up_after` seconds
    without one successful call, once one has failed (calls slower than the budget, or none made
    yet, are no outage: a call that hangs fails at its own deadline)."""

    def __init__(self, give_up_after: float, *, window: int = 20, min_calls: int = 5, first_pause: float = 1.0):
        self.give_up_after = give_up_after
        self.recent: deque[bool] = deque(maxlen=window)
        self.min_calls = min_calls
        self.first_pause = self.pause = first_pause
        self.open_until = 0.0
        self.last_success = time.monotonic()
        self.last_error: BaseException | None = None  # since the last success
        self.pauses = 0
        self.paused_seconds = 0.0
        self._lock = threading.Lock()

    def wait(self, stopping: threading.Event) -> None:
        """Return when calls may go (at once unless the breaker is open); OutageError past the budget."""
        while not stopping.is_set():
            with self._lock:
                now = time.monotonic()
                silent, remaining = now - self.last_success, self.open_until - now
                failing = self.last_error is not None
            if silent > self.give_up_after and failing:
                raise OutageError(
                    f"the service gave no successful answer for {silent:.0f} s (the outage budget is "
                    f"{self.give_up_after:g} s; the last error: {self.last_error})",
                    "سرویس در مدت مجاز پاسخ موفقی نداد",
                )
            if remaining <= 0:
                return
            stopping.wait(min(remaining, 0.25))

    def succeeded(self) -> None:
        with self._lock:
            self.recent.append(True)
            self.last_success = time.monotonic()
            self.last_error = None
            self.pause = self.first_pause

    def failed(self, error: BaseException) -> None:
        with self._lock:
            self.recent.append(False)
            self.last_error = error
            now = time.monotonic()
            if now < self.open_until:
                return
            retry_after = getattr(error, "retry_after", None)
            failing = len(self.recent) >= self.min_calls and self.recent.count(False) * 2 > len(self.recent)
            if retry_after or failing:
                left = self.last_success + self.give_up_after - now  # the run gives up then: no pause outlasts it
                pause = min(max(float(retry_after or 0), self.pause), max(left, 0.0))
                self.open_until = now + pause
                self.pauses += 1
                self.paused_seconds += pause
                self.pause = min(self.pause * 2, 30.0)
                self.recent.clear()


def patiently(
    call: Callable,
    args: tuple,
    breaker: Breaker,
    limiter: RateLimiter,
    stopping: threading.Event,
    on_requeue: Callable[[], None],
    attempts: int = PAGE_ATTEMPTS,
):
    """`call(*args)`, asked again after a growing wait while it fails transiently; raises the
    last error after `attempts`, or at once when waiting will not change the answer."""
    backoff = FIRST_BACKOFF
    for attempt in range(1, attempts + 1):
        breaker.wait(stopping)
        if stopping.is_set():
            raise KeyboardInterrupt("stopped")
        limiter.wait()
        try:
            result = call(*args)
        except PayamakError as error:
            if not transient(error):
                raise
            breaker.failed(error)
            if attempt == attempts:
                raise
            on_requeue()
            stopping.wait(backoff * random.uniform(0.5, 1.5))
            backoff = min(backoff * 2, MAX_BACKOFF)
            continue
        breaker.succeeded()
        return result

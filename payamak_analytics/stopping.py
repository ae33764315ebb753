"""Stopping on SIGINT and SIGTERM, with nothing in the signal handler that can block or be lost.

Python runs a signal handler in the main thread between two bytecodes, possibly while that
thread holds a lock: the one inside `threading.Event.wait`, or the one `Thread.start` takes.
A handler that takes the same lock (`Event.set`, starting a thread) then waits for itself,
forever; one that logs can meet its own half-written line. So the handler here only counts
the signal; the code that waits asks `asked()`, in slices short enough to answer at once.

Requests nest (a sync inside a watch cycle): a signal taken by the inner one is counted by
every outer one too, so a stop the inner work had no chance to act on still ends the outer.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)
POLL = 0.1  # seconds: how soon a wait notices a signal


class StopRequest:
    """A stop asked by a signal (counted by the handler) or by another thread (`event`)."""

    def __init__(self, event: threading.Event | None = None):
        self.event = event or threading.Event()
        self.signals = 0
        self.outer: StopRequest | None = None  # the request whose signals block this one is inside

    def asked(self) -> bool:
        return self.signals > 0 or self.event.is_set() or (self.outer is not None and self.outer.asked())

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; whether a stop was asked (returns as soon as it is)."""
        deadline = time.monotonic() + seconds
        while not self.asked():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.event.wait(min(left, POLL))
        return True

    @contextmanager
    def on_signals(self) -> Iterator[None]:
        """Within this block, SIGINT and SIGTERM ask a stop; a second signal raises
        KeyboardInterrupt at once. Outside the main thread, nothing changes."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {number: signal.getsignal(number) for number in SIGNALS}
        enclosing = getattr(previous[signal.SIGTERM], "__self__", None)
        self.outer = enclosing if isinstance(enclosing, StopRequest) else None
        for number in SIGNALS:
            signal.signal(number, self._on_signal)
        try:
            yield
        finally:
            for number, earlier in previous.items():
                signal.signal(number, earlier)

    def _on_signal(self, number: int, frame) -> None:
        counts = []
        request: StopRequest | None = self
        while request is not None:
            request.signals += 1
            counts.append(request.signals)
            request = request.outer
        if max(counts) > 1:
            raise KeyboardInterrupt(f"{signal.Signals(number).name} again: stopped at once")


@contextmanager
def deferred() -> Iterator[None]:
    """Within this block, SIGINT and SIGTERM wait for its end, then reach the handlers in place
    before it, in the order they came. For a transaction: a handler's KeyboardInterrupt raised
    while DuckDB runs a statement is turned by DuckDB into `RuntimeError: Query interrupted`,
    leaving the transaction aborted (a later statement then fails as if the disk had). A
    transaction is short (a few pages), so a stop waits for it and finds it whole. Outside the
    main thread (where no Python handler runs), nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.getsignal(number) for number in SIGNALS}
    came: list[int] = []
    for number in SIGNALS:
        signal.signal(number, lambda number, frame: came.append(number))
    try:
        yield
    finally:
        for number, earlier in previous.items():
            signal.signal(number, earlier)
        for number in came:
            handler = previous[number]
            if callable(handler):
                handler(number, None)  # may raise KeyboardInterrupt: the body is over by then
            elif handler == signal.SIG_DFL:
                signal.raise_signal(number)  # its default action, as it would have been

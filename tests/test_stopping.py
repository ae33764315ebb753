"""Signals ask a stop without blocking, and a stop asked inside a nested block is not lost."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from payamak_analytics.stopping import StopRequest


def test_a_signal_asks_a_stop_and_a_second_one_interrupts_at_once():
    request, before = StopRequest(), signal.getsignal(signal.SIGTERM)
    with request.on_signals():
        signal.raise_signal(signal.SIGTERM)
        assert request.asked()
        with pytest.raises(KeyboardInterrupt, match="SIGINT again"):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is before  # handlers restored on the way out


def test_a_stop_taken_by_an_inner_block_still_ends_the_outer_one():
    """A sync inside a watch cycle takes the signal; its work ends before it looks: the watch
    must still see the stop."""
    watch, sync = StopRequest(), StopRequest()
    with watch.on_signals():
        with sync.on_signals():
            signal.raise_signal(signal.SIGTERM)
        assert watch.asked()
        with StopRequest().on_signals(), pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGTERM)  # the second signal, though the first for this block


def test_an_outer_stop_reaches_an_inner_block_started_later():
    watch, sync = StopRequest(), StopRequest()
    with watch.on_signals():
        signal.raise_signal(signal.SIGINT)
        with sync.on_signals():
            assert sync.asked()


def test_a_wait_ends_as_soon_as_a_signal_comes_from_outside():
    request = StopRequest()
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM))
    with request.on_signals():
        began = time.monotonic()
        timer.start()
        assert request.wait(60)
        assert time.monotonic() - began < 10
    assert not StopRequest().wait(0.05)  # nothing asked: the whole wait


def test_another_thread_stops_through_the_event():
    event = threading.Event()
    request = StopRequest(event)
    threading.Timer(0.2, event.set).start()
    assert request.wait(60) and request.asked()

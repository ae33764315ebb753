"""Seeded network trouble in front of the SOAP endpoint: latency, 5xx, Faults, drops, stalls.

Drops and stalls happen after the operation ran, as on a real network: the send went out
but its answer never arrived. Errors and Faults happen before it, so nothing was done.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass

from .soap import XML_HEADERS, SoapApp, fault_body
from .world import World

# What HTTP.sys answers for an IIS site whose application pool is down.
UNAVAILABLE = (
    b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">\r\n'
    b"<HTML><HEAD><TITLE>Service Unavailable</TITLE>\r\n"
    b'<META HTTP-EQUIV="Content-Type" Content="text/html; charset=us-ascii"></HEAD>\r\n'
    b"<BODY><h2>Service Unavailable</h2>\r\n<hr><p>HTTP Error 503. The service is unavailable.</p>\r\n</BODY></HTML>\r\n"
)


class DarkGate:
    """In front of everything: while an admin has the service dark, every request but the
    admin's own answers 503, as a load balancer in front of a stopped IIS app pool would."""

    def __init__(self, app, world: World):
        self.app = app
        self.world = world

    def __call__(self, environ, start_response):
        left = self.world.dark_seconds_left()
        if left <= 0 or environ.get("PATH_INFO", "").startswith("/_sim/"):
            return self.app(environ, start_response)
        start_response(
            "503 Service Unavailable",
            [
                ("Content-Type", "text/html; charset=us-ascii"),
                ("Retry-After", str(math.ceil(left))),
                ("Content-Length", str(len(UNAVAILABLE))),
            ],
        )
        return [UNAVAILABLE]


@dataclass(frozen=True)
class FaultConfig:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    fail_rate: float = 0.0  # HTTP 500 or 503 with no SOAP body
    fault_rate: float = 0.0  # a SOAP Fault
    drop_rate: float = 0.0  # the connection closes in the middle of the body
    slow_rate: float = 0.0  # the answer comes after `slow_seconds`, past a client's timeout
    slow_seconds: float = 35.0
    seed: int = 7
    operations: tuple[str, ...] = ()  # only these operations (by SOAPAction) meet trouble; empty: all

    @property
    def any(self) -> bool:
        return any((self.latency_ms, self.jitter_ms, self.fail_rate, self.fault_rate, self.drop_rate, self.slow_rate))


class FaultyApp:
    """Wraps `SoapApp`; SOAP POSTs draw their fate from one seeded generator."""

    def __init__(self, app: SoapApp, config: FaultConfig):
        self.app = app
        self.config = config
        self.random = random.Random(config.seed)
        self.lock = threading.Lock()
        self.injected: Counter[str] = Counter()

    def _draw(self) -> tuple[str, float]:
        c = self.config
        with self.lock:
            delay = max(0.0, c.latency_ms + self.random.uniform(-c.jitter_ms, c.jitter_ms)) / 1000
            roll = self.random.random()
            fate = "ok"
            for name, rate in (
                ("fail", c.fail_rate),
                ("fault", c.fault_rate),
                ("drop", c.drop_rate),
                ("slow", c.slow_rate),
            ):
                if roll < rate:
                    fate = name
                    break
                roll -= rate
            self.injected[fate] += 1
        return fate, delay

    def __call__(self, environ, start_response):
        if environ["REQUEST_METHOD"] != "POST" or environ.get("PATH_INFO", "").startswith("/_sim/"):
            return self.app(environ, start_response)
        operation = environ.get("HTTP_SOAPACTION", "").strip('"').rsplit("/", 1)[-1]
        if self.config.operations and operation not in self.config.operations:
            return self.app(environ, start_response)
        fate, delay = self._draw()
        time.sleep(delay)
        if fate == "fail":
            status = self.random.choice(["500 Internal Server Error", "503 Service Unavailable"])
            start_response(status, [("Content-Type", "text/html"), ("Content-Length", "21")])
            return [b"<h1>Server Error</h1>"]
        if fate == "fault":
            body = fault_body("The service is temporarily unable to process the request.", "s:Server")
            start_response("500 Internal Server Error", XML_HEADERS + [("Content-Length", str(len(body)))])
            return [body]
        status, body = self.app.handle_soap(environ)
        if fate == "slow":
            time.sleep(self.config.slow_seconds)
        start_response(status, XML_HEADERS + [("Content-Length", str(len(body)))])
        if fate == "drop":
            return [body[: len(body) // 2]]  # fewer bytes than promised: the server closes the connection
        return [body]

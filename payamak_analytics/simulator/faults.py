"""Seeded network trouble in front of the SOAP endpoint: latency, 5xx, Faults, drops, stalls.

Drops and stalls happen after the operation ran, as on a real network: the send went out
but its answer never arrived. HTTP errors happen before it, so nothing was done. A Fault is
what WCF answers for an exception inside the operation (InternalServiceFault, details off): the
exception may come before the operation did its work or after (the send went out, the answer
failed), so half of the injected Faults come after it ran; a request WCF refuses before the
operation (a wrong SOAPAction, an unreadable body) gets that refusal instead.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass

from .soap import SoapApp, answer
from .world import World

# What HTTP.sys answers for an IIS site whose application pool is down.
UNAVAILABLE = (
    b'<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01//EN""http://www.w3.org/TR/html4/strict.dtd">\r\n'
    b"<HTML><HEAD><TITLE>Service Unavailable</TITLE>\r\n"
    b'<META HTTP-EQUIV="Content-Type" Content="text/html; charset=us-ascii"></HEAD>\r\n'
    b"<BODY><h2>Service Unavailable</h2>\r\n<hr><p>HTTP Error 503. The service is unavailable.</p>\r\n</BODY></HTML>\r\n"
)
# What IIS answers when the site itself fails before WCF reads the request (custom errors on).
SERVER_ERROR = (
    b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">\r\n'
    b'<html xmlns="http://www.w3.org/1999/xhtml">\r\n<head>\r\n'
    b'<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1"/>\r\n'
    b"<title>500 - Internal server error.</title>\r\n</head>\r\n<body>\r\n"
    b'<div id="header"><h1>Server Error</h1></div>\r\n<div id="content">\r\n <div class="content-container"><fieldset>\r\n'
    b"  <h2>500 - Internal server error.</h2>\r\n"
    b"  <h3>There is a problem with the resource you are looking for, and it cannot be displayed.</h3>\r\n"
    b" </fieldset></div>\r\n</div>\r\n</body>\r\n</html>\r\n"
)


class DarkGate:
    """In front of everything: while an admin has the service dark, every SOAP call (and, if
    asked, every document too) answers 503, as a load balancer in front of a stopped IIS app
    pool would. The admin's own endpoints stay open."""

    def __init__(self, app, world: World):
        self.app = app
        self.world = world

    def __call__(self, environ, start_response):
        left = self.world.dark_seconds_left()
        soap = environ["REQUEST_METHOD"] == "POST"
        admin = environ.get("PATH_INFO", "").startswith("/_sim/")
        if left <= 0 or admin or not (soap or self.world.dark_documents):
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
    fail_rate: float = 0.0  # HTTP 500 or 503 from IIS, with its HTML page and no SOAP body
    fault_rate: float = 0.0  # WCF's InternalServiceFault (half of them after the operation ran)
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
        """The request's fate and delay; a Fault's fate says whether the operation ran first."""
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
                    if name == "fault" and roll >= rate / 2:
                        fate = "fault after"
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
            with self.lock:
                unavailable = self.random.random() < 0.5
            status, content_type, page = (
                ("503 Service Unavailable", "text/html; charset=us-ascii", UNAVAILABLE)
                if unavailable
                else ("500 Internal Server Error", "text/html", SERVER_ERROR)
            )
            start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(page)))])
            return [page]
        throws = {"fault": "before", "fault after": "after"}.get(fate)
        status, body = self.app.handle_soap(environ, throws)
        if fate == "slow":
            time.sleep(self.config.slow_seconds)
        return answer(start_response, status, body, cut=fate == "drop")

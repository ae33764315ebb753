"""The one place that posts an envelope, reads the answer and classifies every failure.

What each operation may do is declared once in OPERATIONS: whether it only reads (and may be
asked again), how large its answer may be, which result codes mean "ask again", and the
fields of its reply. Every attempt has a deadline: one watchman thread cuts the socket of an
attempt still running then, and name resolution and connecting (which no cut can end) run in a
thread the attempt waits for until then, so a slow resolver, a TLS handshake and a server that
trickles a byte a second all fit in `timeout`. The connection itself records whether any byte
of the request was written, which alone decides "not sent". The answer is read in chunks
against a size cap, counted before and after decompression. No redirect is followed (or even
resolved), and the WSDL and its schemas come only from the configured host, under one deadline
and one size budget for the whole load. A failure is raised outside of the code that held the
envelope, scrubbed of every secret, so no exception carries the password in its arguments, its
context or its frames.
"""

from __future__ import annotations

import email.utils
import functools
import heapq
import ipaddress
import itertools
import logging
import os
import random
import secrets
import socket
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit
from xml.sax.saxutils import escape

import platformdirs
import requests
import urllib3
import zeep
import zeep.cache
import zeep.exceptions
from lxml import etree
from requests.adapters import HTTPAdapter
from urllib3.util.ssltransport import SSLTransport

from ..errors import (
    AnswerError,
    InputError,
    NotSentError,
    RedirectRefusedError,
    SendOutcomeUnknownError,
    SoapFaultError,
    TransportError,
    UnsupportedOperationError,
)
from .envelope import NEVER_RAN, read_reply, response_element
from .safety import scrub, sealed, shown_url
from .settings import Settings
from .templates import EnvelopeTemplate, integers_only

log = logging.getLogger("payamak_analytics.client")

BINDING = "{http://tempuri.org/}BasicHttpBinding_ISendService"
PORT = "BasicHttpBinding_ISendService"
KB, MB = 1024, 1024 * 1024
CHUNK = 64 * KB
DOCUMENT_CAP = 4 * MB  # a WSDL or a schema
LOAD_BYTES = 16 * MB  # a whole service description, every document together
LOAD_DOCUMENTS = 32  # the real one has five


@dataclass(frozen=True)
class Operation:
    """What one operation of the service may do, and what its answer holds."""

    read: bool  # changes nothing: safe to ask again
    reply: dict[str, str]  # wire name -> kind of each field of the answer, the result first
    cap: Callable[[dict], int] = lambda params: 64 * KB  # largest answer accepted, before and after gzip
    retry_results: frozenset[int] = frozenset()  # result codes that mean "ask again"

    @property
    def result(self) -> str:
        return next(iter(self.reply))


def _rows(per_row: int, fixed: int = 64 * KB, key: str = "count", default: int = 1) -> Callable[[dict], int]:
    return lambda params: fixed + per_row * int(params.get(key) or default)


def _comma_separated(params: dict) -> int:
    return 64 * KB + 64 * (str(params.get("numbers", "")).count(",") + 1)


OPERATIONS: dict[str, Operation] = {
    "GetCredit": Operation(True, {"GetCreditResult": "decimal"}),
    "GetInboxCount": Operation(True, {"GetInboxCountResult": "int"}),
    "GetSenderNumbers": Operation(True, {"GetSenderNumbersResult": "string"}, cap=lambda params: MB),
    "GetDelivery": Operation(True, {"GetDeliveryResult": "long"}, retry_results=frozenset({-1})),
    "GetDeilvery": Operation(True, {"GetDeilveryResult": "long"}, retry_results=frozenset({-1})),
    "GetMessages": Operation(True, {"GetMessagesResult": "messages"}, cap=_rows(16 * KB)),
    "GetMessagesByDateRange": Operation(True, {"GetMessagesByDateRangeResult": "messages"}, cap=lambda p: 32 * MB),
    "GetBatchDelivery": Operation(
        True,
        {"GetBatchDeliveryResult": "int", "numbers": "string[]", "deliveryStatus": "int[]"},
        cap=_rows(KB, 16 * KB),
    ),
    "GetDeliveryLikeToLike": Operation(
        True,
        {"GetDeliveryLikeToLikeResult": "int", "numbers": "string[]", "deliveryStatus": "int[]"},
        cap=lambda params: 256 * KB,
    ),
    "NumberIsInTelecomBlacklist": Operation(True, {"NumberIsInTelecomBlacklistResult": "int"}),
    "ExtractTelecomBlacklistNumbers": Operation(
        True,
        {"ExtractTelecomBlacklistNumbersResult": "int", "blacklistNumbers": "string[]"},
        cap=_comma_separated,
    ),
    "CheckSmsContent": Operation(True, {"CheckSmsContentResult": "int"}),
    "Dummy": Operation(True, {"DummyResult": "int"}),
    "SendSMS": Operation(False, {"SendSMSResult": "int", "recId": "long[]", "status": "base64"}),
    "SendBatchSms": Operation(False, {"SendBatchSmsResult": "int", "batchSmsId": "int"}),
    "SendSmsLikeToLike": Operation(False, {"SendSmsLikeToLikeResult": "int", "smsId": "int"}),
}


# --- one exchange: its deadline, and whether its request left ------------------------------------
class Deadline:
    """The end of one budget (a call, an attempt, the load of a service description)."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.end - time.monotonic()


class Abandoned(OSError):
    """The caller gave up on an attempt before its request was written: now it never will be."""


class Attempt:
    """One request on the wire. Its connection records here, before the first byte of the request
    is handed to the socket, that the request was written; once the caller has given up (the
    deadline passed), no byte may leave any more. So "not sent" is a fact the connection kept,
    not a guess from the kind of error."""

    def __init__(self, deadline: Deadline):
        self.deadline = deadline
        self.written = False
        self.abandoned = False
        self.finished = False
        self.connection = None
        self.opened: socket.socket | None = None  # the socket `opened_in_time` handed over
        self._lock = threading.Lock()

    def watch(self, connection, writing: bool = False) -> None:
        """The connection that is about to connect, or (`writing`) to write the request. Checked
        and recorded in one step: a give-up between the two would tell "not written" of a
        request then written."""
        with self._lock:
            self.connection = connection
            if self.abandoned:
                raise Abandoned("the call gave up before the request was written")
            self.written = self.written or writing

    def abandon(self) -> bool:
        """Give up: nothing more will be written, and the socket is cut so a blocked read or write
        ends; whether any byte of the request had been written. An attempt that has handed its
        connection back is not cut: the connection may be another attempt's by now."""
        with self._lock:
            if not self.finished:
                self.abandoned = True
                _cut(getattr(self.connection, "sock", None))
                _cut(self.opened)  # handed over, not yet the connection's `sock`: a handshake on it ends too
            return self.written

    def finish(self) -> bool:
        """The attempt lets go of its connection (back to the pool, or closed): no cut reaches it
        from now on. Whether it was cut (such a connection must not be used again)."""
        with self._lock:
            self.finished, self.connection, self.opened = True, None, None
            return self.abandoned

    def opened_in_time(self, open_socket: Callable[[], socket.socket]) -> socket.socket:
        """`open_socket()` (name resolution and connecting: steps no cut socket can end) in a thread
        of its own, waited for until the deadline; a socket opened after that is closed at once."""
        box: list = []

        def run() -> None:
            try:
                opened = open_socket()
            except Exception as error:  # noqa: BLE001 (raised again in the caller's thread)
                box.append(error)
                return
            with self._lock:
                if self.abandoned:
                    opened.close()
                else:
                    self.opened = opened
                    box.append(opened)

        opener = threading.Thread(target=run, name="payamak-connect", daemon=True)
        opener.start()
        opener.join(max(self.deadline.remaining(), 0.0))
        with self._lock:
            if not box:
                self.abandoned = True
                raise Abandoned("the call gave up while connecting, before the request was written")
        if isinstance(box[0], Exception):
            raise box[0]
        return box[0]


def _cut(sock) -> None:
    """Shut the operating system's socket under `sock` both ways. Not through `SSLSocket.shutdown`:
    it first drops the TLS state, so a write of the caller's racing the cut goes out in clear (the
    envelope, password and all); and urllib3's SSLTransport (TLS inside a TLS proxy) has no
    `shutdown` at all. Never raises: it runs in the watchman."""
    while isinstance(sock, SSLTransport):
        sock = sock.socket
    if isinstance(sock, socket.socket):
        try:
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the C method: SSLSocket's override skipped
        except (OSError, ValueError):
            pass


class Watchman:
    """One thread for the process that gives up every attempt still running at its deadline,
    cutting its socket. An attempt runs in its caller's thread (a thread of its own each cost as
    much CPU as the request itself at sixteen workers), and the cut ends its blocked read or write."""

    def __init__(self):
        self._due: list[tuple[float, int, Attempt]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._sweep_at = 64  # heap size at which attempts finished behind an unfinished one are dropped

    def watch(self, attempt: Attempt) -> None:
        with self._wake:
            self._forget_finished()
            if len(self._due) >= self._sweep_at:  # those behind a slow one too (amortised: the size doubles)
                self._due = [entry for entry in self._due if not entry[2].finished]
                heapq.heapify(self._due)
                self._sweep_at = max(64, 2 * len(self._due))
            heapq.heappush(self._due, (attempt.deadline.end, next(self._order), attempt))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="payamak-watchman", daemon=True)
                self._thread.start()
            if self._due[0][2] is attempt:  # sooner than the one it sleeps for
                self._wake.notify()

    def _forget_finished(self) -> None:
        """Drop the attempts at the head of the queue that ended before their deadline."""
        while self._due and self._due[0][2].finished:
            heapq.heappop(self._due)

    def _run(self) -> None:
        with self._wake:
            while True:
                self._forget_finished()
                if not self._due:
                    self._wake.wait()
                elif (left := self._due[0][0] - time.monotonic()) > 0:
                    self._wake.wait(left)
                else:
                    attempt = heapq.heappop(self._due)[2]
                    try:
                        attempt.abandon()
                    except Exception as error:  # noqa: BLE001 (one odd socket must not end every deadline)
                        log.error("could not cut an attempt at its deadline (%s)", type(error).__name__)
                    del attempt


WATCHMAN = Watchman()
os.register_at_fork(after_in_child=WATCHMAN.__init__)  # a child process has no watchman thread: it starts its own


_CURRENT = threading.local()


class _Recorded:
    """A connection that tells the current attempt when it connects and before it writes."""

    def connect(self):
        attempt = getattr(_CURRENT, "attempt", None)
        if attempt is not None:
            attempt.watch(self)
        return super().connect()

    def _new_conn(self):
        attempt = getattr(_CURRENT, "attempt", None)
        if attempt is None:
            return super()._new_conn()
        return attempt.opened_in_time(self._open_and_read_trust)

    def _open_and_read_trust(self):
        """The socket, and the CA bundle (of a TLS connection) read into memory: both may block,
        on the network or on a file (a hung network share), where no cut socket reaches."""
        opened = super()._new_conn()
        bundle = getattr(self, "ca_certs", None)
        if bundle:
            self.ca_cert_data, self.ca_certs = _certificates(bundle), None
        return opened

    def send(self, data):
        if self.sock is None:  # a refused or unresolvable connection has written nothing
            self.connect()
        attempt = getattr(_CURRENT, "attempt", None)
        if attempt is not None:
            attempt.watch(self, writing=not getattr(self, "_tunneling", False))
        return super().send(data)

    def _tunnel(self):
        """The CONNECT asking a proxy for a tunnel holds none of the request: a proxy that refuses
        it was written no byte of it (a late CONNECT is still refused once the call gave up)."""
        self._tunneling = True
        try:
            return super()._tunnel()
        finally:
            self._tunneling = False


@functools.cache
def _certificates(bundle: str) -> str:
    """A CA bundle's text as the TLS context loads it from memory (ASCII: a bundle's comments may
    name an issuer in any script, and only the certificates between them count)."""
    return Path(bundle).read_bytes().decode("latin-1").encode("ascii", "replace").decode("ascii")


class _RecordedHTTP(_Recorded, urllib3.connection.HTTPConnection):
    pass


class _RecordedHTTPS(_Recorded, urllib3.connection.HTTPSConnection):
    pass


class _TakingBack:
    """A pool that takes a connection back from an attempt only once the attempt has let go of it,
    and closes one its deadline cut: the next request never gets a cut socket, and no late cut
    reaches a request that is not its own."""

    def _put_conn(self, conn):
        attempt = getattr(_CURRENT, "attempt", None)
        if attempt is not None and attempt.finish() and conn is not None:
            conn.close()
        super()._put_conn(conn)


class _HTTPPool(_TakingBack, urllib3.HTTPConnectionPool):
    ConnectionCls = _RecordedHTTP


class _HTTPSPool(_TakingBack, urllib3.HTTPSConnectionPool):
    ConnectionCls = _RecordedHTTPS


class RecordedAdapter(HTTPAdapter):
    """requests' adapter with recorded connections and no retries of its own."""

    def __init__(self):
        super().__init__(pool_connections=4, pool_maxsize=32, max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        """requests' manager for a proxy (HTTP_PROXY, HTTPS_PROXY), with recorded connections too:
        without them a send the proxy read whole, then dropped, was reported as not sent."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, urllib3.ProxyManager):
            manager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
        return manager


def new_session() -> requests.Session:
    session = requests.Session()
    adapter = RecordedAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


# --- reading an answer --------------------------------------------------------------------------
class _Sealed(bytes):
    """Request bytes that hold the password: they never show themselves."""

    def __repr__(self) -> str:
        return f"<envelope, {len(self)} bytes>"

    __str__ = __repr__


@dataclass
class Answer:
    status: int
    headers: urllib3.HTTPHeaderDict  # looked up case-insensitively, as HTTP means them
    body: bytes


@dataclass
class _Problem:
    """A failure, described where it happened and raised where no secret is in scope."""

    kind: str  # "refused": no byte of the request was written; "lost": written, then no answer; "answer": read;
    # "interrupted": a Ctrl-C or SystemExit, in extra["raise"], raised again by `interrupted`
    detail: str
    retryable: bool = True
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Route:
    """How requests to one address go, worked out once (reading the environment and preparing a
    request through requests cost more CPU than the exchange itself): requests' adapter and the
    environment's settings for the address (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE...), the
    URL the connection pool is asked for, and the headers every request carries (with the
    address's user-info as Basic auth)."""

    url: str
    adapter: HTTPAdapter
    prepared: requests.PreparedRequest
    options: dict
    target: str

    @classmethod
    def to(cls, session: requests.Session, url: str) -> Route:
        options = session.merge_environment_settings(url, {}, True, None, None)
        prepared = requests.PreparedRequest()
        prepared.prepare(method="GET", url=url, headers=dict(session.headers))
        adapter = session.get_adapter(url)
        return cls(url, adapter, prepared, options, adapter.request_url(prepared, options["proxies"]))

    def pool(self) -> urllib3.HTTPConnectionPool:
        """The pool requests would send through (asked each time: its manager may let one go), with
        the certificate checks requests' `send` sets on it: its own CA bundle (certifi) unless told
        otherwise, never OpenSSL's default store."""
        options = self.options
        pool = self.adapter.get_connection_with_tls_context(
            self.prepared, options["verify"], options["proxies"], options["cert"]
        )
        self.adapter.cert_verify(pool, self.url, options["verify"], options["cert"])
        if not issubclass(pool.ConnectionCls, _Recorded):  # (a SOCKS proxy's own pools): fail before any byte
            raise TypeError("a connection that would not record whether the request was written")
        return pool


def route_to(session: requests.Session, url: str) -> Route | _Problem:
    """The route to `url`, or the problem requests found in the address (a port out of range, a bad
    host, no adapter for its scheme): met by each call, typed, naming neither the address nor its
    user-info (requests' exceptions hold both, in their text and in their frames)."""
    try:
        return Route.to(session, url)
    except Exception as error:  # noqa: BLE001 (whatever requests raises for an address is classified)
        return _Problem("refused", f"could not use the address ({type(error).__name__}); nothing was written", False)


def exchange(route: Route, method: str, body, headers: dict, cap: int, deadline: Deadline) -> Answer | _Problem:
    """One request, in the caller's thread, given up at `deadline` by the watchman: name resolution,
    connecting, the TLS handshake, writing and reading all fit in it. An Answer or the _Problem met;
    every exception of the exchange, whatever raised it, becomes a _Problem here."""
    attempt = Attempt(deadline)
    WATCHMAN.watch(attempt)
    _CURRENT.attempt = attempt
    try:
        got = _request(route, method, body, headers, cap, deadline)
    except Exception as error:  # noqa: BLE001 (every failure of an exchange is classified, none escapes)
        name = type(error).__name__
        got = (
            _Problem("lost", f"the connection failed after the request was written ({name})")
            if attempt.written
            else _Problem("refused", f"could not connect ({name}); nothing was written")
        )
    except BaseException as interrupt:  # noqa: BLE001 (Ctrl-C, SystemExit: raised again by `interrupted`)
        # Raised from here, it would pass through (and keep, for a notebook's sys.last_traceback)
        # every frame that holds the envelope: urllib3's, http.client's, this one's `body`.
        got = _Problem("interrupted", type(interrupt).__name__, False, {"raise": sealed(interrupt)})
    finally:
        _CURRENT.attempt = None
        cut = attempt.finish()
    if isinstance(got, _Problem) and "raise" in got.extra:
        return got
    if not cut or isinstance(got, Answer):  # an Answer read whole before the deadline stands
        return got
    if attempt.written:
        return _Problem("lost", "no complete answer before the deadline (timeout)")
    return _Problem("refused", "could not reach the service before the deadline (timeout); nothing was written")


def interrupted(got: Answer | _Problem) -> None:
    """Raise again, from the caller's frame (which holds no envelope), a Ctrl-C or SystemExit the
    exchange met."""
    if isinstance(got, _Problem) and "raise" in got.extra:
        raise got.extra["raise"]


def _request(route: Route, method: str, body, headers: dict, cap: int, deadline: Deadline) -> Answer | _Problem:
    """Straight to the connection pool requests would use (the same proxies, certificate checks and
    kept-alive connections), without requests' own layer: no redirect is resolved, followed or even
    parsed, and no cookie, .netrc login or hook is added (a SOAP call needs none, and that layer
    cost as much CPU as the rest of the request)."""
    sized = {} if body is None else {"Content-Length": str(len(body))}
    for header in headers.items():  # as requests checks them: no line break (http.client lets "\r\n " through)
        requests.utils.check_header_validity(header)
    limit = max(deadline.remaining(), 0.001)
    response = route.pool().urlopen(
        method,
        route.target,
        body=body,
        headers={**route.prepared.headers, **headers, **sized},
        redirect=False,
        assert_same_host=False,
        preload_content=False,
        decode_content=False,
        retries=False,
        timeout=urllib3.Timeout(connect=limit, read=limit),
    )
    try:
        if 300 <= response.status < 400:
            where = location(route.url, response.headers.get("Location", ""))
            return _Problem("answer", f"HTTP {response.status} redirect to {where}", False, {"location": where})
        read = read_body(response, cap, deadline)
        return read if isinstance(read, _Problem) else Answer(response.status, response.headers, read)
    finally:
        response.close()  # a connection whose answer was not read to the end is not used again
        response.release_conn()


def location(base: str, header: str) -> str:
    """Where a redirect pointed, fit to show: resolved if it can be, scrubbed of secrets, no user-info."""
    try:
        target = urljoin(base, header)
    except ValueError:
        target = header
    return shown_url(scrub(target))[:300]


def _decoder(encoding: str):
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(wbits=47)  # gzip or zlib, told apart by their header
    raise ValueError(encoding)


def read_body(response: urllib3.BaseHTTPResponse, cap: int, deadline: Deadline) -> bytes | _Problem:
    """The answer's bytes, decompressed, or the problem: over `cap` (compressed or not), cut off,
    or past the deadline."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > cap:
        return _Problem("answer", f"the answer announced {int(declared):,} bytes, over the cap of {cap:,}", False)
    try:
        decoder = _decoder(response.headers.get("Content-Encoding", "").strip().lower())
    except ValueError:
        return _Problem("answer", "the answer used a compression this client does not accept", False)
    chunks, size, raw_size = [], 0, 0
    try:
        while deadline.remaining() > 0:
            data = response.read1(CHUNK, decode_content=False)
            if not data:
                break
            raw_size += len(data)
            data = _inflate(decoder, data, cap + 1 - size)
            size += len(data)
            if raw_size > cap or size > cap:
                return _Problem("answer", f"the answer grew over the cap of {cap:,} bytes", False)
            chunks.append(data)
    except (urllib3.exceptions.HTTPError, OSError, zlib.error) as error:
        return _Problem("answer", f"the answer was cut off ({type(error).__name__})")
    if deadline.remaining() <= 0:
        return _Problem("lost", "no complete answer before the deadline (timeout)")
    if decoder is not None and not decoder.eof:
        return _Problem("answer", "the compressed answer was cut off")
    return b"".join(chunks)


def _inflate(decoder, data: bytes, room: int) -> bytes:
    """`data` decompressed, at most `room` bytes of it (room is one past the cap, so output
    that fills it is over the cap; the rest stays unread in the decoder)."""
    return data if decoder is None else decoder.decompress(data, room)


def retry_after(headers) -> float | None:
    """Seconds a Retry-After header asks for (a number or an HTTP date), None when absent or unreadable."""
    value = (headers.get("Retry-After") or "").strip()
    if value.isascii() and value.isdigit():  # "\xb2" (a superscript two) is a digit to str, not to float
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


# --- the service description, only from where it was asked for --------------------------------
def _origin(address: str) -> tuple[str, str] | None:
    try:
        parts = urlsplit(address)
    except ValueError:  # a malformed address (http://[::1/x) is an origin of its own: a call to it is refused, typed
        return ("", address)
    return (parts.scheme.lower(), parts.netloc.lower()) if parts.scheme in ("http", "https") else None


class GuardedTransport(zeep.Transport):
    """zeep's document loader, restricted: documents come only from the configured WSDL's host
    (or the endpoint's), or from the folder of a local WSDL; no redirect; and the whole load, every
    document together, has one deadline (the call budget), one byte budget and a document count cap."""

    def __init__(self, settings: Settings, session: requests.Session, cache):
        super().__init__(cache=cache, timeout=settings.timeout, operation_timeout=settings.timeout, session=session)
        self.origins = {o for o in (_origin(settings.wsdl), _origin(settings.endpoint or "")) if o}
        local = _origin(settings.wsdl) is None
        self.folder = Path(settings.wsdl).expanduser().resolve().parent if local else None
        self.documents: dict[str, bytes] = {}  # what the service description was read from, by address
        self.budget_seconds = settings.call_budget
        self.budget = Deadline(settings.call_budget)
        self.bytes_left = LOAD_BYTES
        self.loads = 0

    def load(self, url: str) -> bytes:
        self.loads += 1
        if self.loads > LOAD_DOCUMENTS or self.bytes_left <= 0 or self.budget.remaining() <= 0:
            raise TransportError(
                f"The service description grew past what one may hold ({LOAD_DOCUMENTS} documents, "
                f"{LOAD_BYTES // MB} MB, or the call budget of {self.budget_seconds:g} s) at {shown_url(url)}; "
                "refused. Use the bundled contract (PAYAMAK_WSDL=bundled) with PAYAMAK_ENDPOINT.",
                "توضیحات سرویس از حد مجاز بزرگ تر یا کندتر بود و پذیرفته نشد",
                retryable=False,
            )
        content = self._load_allowed(url)
        self.bytes_left -= len(content)
        self.documents[url] = content
        return content

    def _load_allowed(self, url: str) -> bytes:
        origin = _origin(url)
        if origin is None and urlsplit(url).scheme in ("", "file"):
            path = Path(urlsplit(url).path if url.startswith("file:") else url).expanduser().resolve()
            if self.folder is None or not path.is_relative_to(self.folder):
                raise TransportError(
                    f"The service description asked to read the local file {path}; refused (only the "
                    "folder of a local WSDL may be read).",
                    "خواندن فایل محلی برای توضیحات سرویس پذیرفته نشد",
                    retryable=False,
                )
            return path.read_bytes()[: self.bytes_left + 1]
        if origin not in self.origins:
            raise TransportError(
                f"The service description points at {shown_url(url)}, another host than the configured one; "
                "refused. Use the bundled contract (PAYAMAK_WSDL=bundled) with PAYAMAK_ENDPOINT if that is expected.",
                "توضیحات سرویس به میزبان دیگری اشاره می کرد و پذیرفته نشد",
                retryable=False,
            )
        cache = self.cache if self.cache and not _on_this_machine(url) else None
        cached = cache.get(url) if cache else None
        if cached:
            return bytes(cached)
        deadline = Deadline(min(self.load_timeout, self.budget.remaining()))
        content = fetch_document(self.session, url, deadline, min(DOCUMENT_CAP, self.bytes_left))
        if cache:
            cache.add(url, content)
        return content


def _on_this_machine(url: str) -> bool:
    """Whether `url` is on loopback: a local simulator, fast to ask and free to change between runs
    (another contract generation on a reused port), so its documents are never cached."""
    host = urlsplit(url).hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fetch_document(session: requests.Session, url: str, deadline: Deadline, cap: int = DOCUMENT_CAP) -> bytes:
    """GET one document: no redirect, within `deadline`, at most `cap` bytes."""
    headers = {"Accept-Encoding": "gzip, deflate"}
    route = route_to(session, url)
    got = route if isinstance(route, _Problem) else exchange(route, "GET", None, headers, cap, deadline)
    interrupted(got)
    if isinstance(got, Answer) and got.status == 200:
        return got.body
    detail = got.detail if isinstance(got, _Problem) else f"HTTP {got.status}"
    raise TransportError(
        f"Could not load the service description from {shown_url(url)}: {detail}. Check the address "
        "(PAYAMAK_WSDL) and the network, or use wsdl='bundled' with endpoint=.",
        "توضیحات سرویس (WSDL) بارگیری نشد",
        retryable=isinstance(got, _Problem) and got.retryable,
    )


def wsdl_cache() -> zeep.cache.SqliteCache:
    """A persistent cache of downloaded WSDL and schemas, so a client builds in milliseconds."""
    folder = Path(platformdirs.user_cache_dir("payamak_analytics"))
    folder.mkdir(parents=True, exist_ok=True)
    return zeep.cache.SqliteCache(path=str(folder / "wsdl-cache.sqlite"), timeout=7 * 86400)


def load_service(settings: Settings, session: requests.Session) -> zeep.Client:
    """The service description as zeep reads it, or one TransportError saying what to check."""
    transport = GuardedTransport(settings, session, wsdl_cache() if settings.cache_wsdl else None)
    zeep_settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, xml_huge_tree=False)
    try:
        return zeep.Client(settings.wsdl, transport=transport, settings=zeep_settings)
    except TransportError as error:
        failure = error
    except Exception as error:  # noqa: BLE001 (whatever a hostile description makes zeep raise is typed here)
        failure = TransportError(
            f"Could not load the service description from {shown_url(settings.wsdl)}: {type(error).__name__}: "
            f"{scrub(str(error))[:300]}. Check the address (PAYAMAK_WSDL) and the network, or use "
            "wsdl='bundled' with endpoint=.",
            "توضیحات سرویس (WSDL) بارگیری نشد",
        )
    raise failure


def _declared_address(client: zeep.Client, settings: Settings) -> str:
    """The address the description declares for the SendService port; TransportError when it has none."""
    try:
        port = next(iter(client.wsdl.services.values())).ports[PORT]
        client.wsdl.bindings[BINDING]
        return str(port.binding_options["address"])
    except (StopIteration, KeyError, AttributeError):
        raise TransportError(
            f"The service description at {shown_url(settings.wsdl)} has no {PORT} port of the SendService; "
            "check the address (PAYAMAK_WSDL), or use wsdl='bundled' with endpoint=.",
            "توضیحات سرویس، سرویس ارسال پیامک را نداشت",
            retryable=False,
        ) from None


# --- the calls ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reply:
    """A checked answer: its bytes and its fields read by the operation's declared reply."""

    raw: bytes = field(repr=False)
    fields: dict

    @property
    def result(self):
        return next(iter(self.fields.values()))


class Wire:
    """One session and one service description; `call` is the only way out."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.session = new_session()
        self.zeep = load_service(settings, self.session)
        declared = _declared_address(self.zeep, settings)
        self.binding = self.zeep.wsdl.bindings[BINDING]
        self.endpoint = settings.endpoint or declared
        if settings.endpoint is None and _origin(settings.wsdl) and _origin(declared) != _origin(settings.wsdl):
            self.close()
            raise TransportError(
                f"The service description sends calls to {shown_url(declared)}, another host than "
                f"{shown_url(settings.wsdl)}; refused, as the calls carry the password. Set PAYAMAK_ENDPOINT "
                "if that address is right.",
                "نشانی سرویس در WSDL به میزبان دیگری اشاره می کرد",
                retryable=False,
            )
        self.service = self.zeep.create_service(BINDING, self.endpoint)
        self._route = route_to(self.session, self.endpoint)
        self.operations = frozenset(name for name in self.binding.all() if name in OPERATIONS)
        self.calls: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._token = secrets.token_hex(16)
        self._templates: dict[tuple, EnvelopeTemplate | None] = {}

    def close(self) -> None:
        self.session.close()

    def policy(self, operation: str) -> Operation:
        if operation not in self.operations:
            raise UnsupportedOperationError(
                f"This deployment of the service has no {operation} operation (older ones lack some); "
                "see client.operations for the ones it has.",
                f"این سرویس متد {operation} را ندارد",
                operation=operation,
            )
        return OPERATIONS[operation]

    def call(self, operation: str, params: dict, read: Callable[[bytes, str], object] | None = None) -> Reply:
        """One operation, retried only if it reads and a retry can help, only within the call's budget.

        The answer is checked and read by the operation's declared reply, or by `read(raw,
        operation)`, whose result is then the reply's one field: a list of a thousand records is
        read without building its tree (a read's errors are retried as the reply's would be)."""
        policy = self.policy(operation)
        budget = Deadline(self.settings.call_budget)
        attempt = 0
        while True:
            attempt += 1
            deadline = Deadline(min(self.settings.timeout, budget.remaining()))
            outcome = self._attempt(operation, params, policy, deadline, read)
            retry_answer = (
                isinstance(outcome, Reply) and bool(policy.retry_results) and outcome.result in policy.retry_results
            )
            if isinstance(outcome, Reply) and not retry_answer:
                return outcome
            wait = self._wait(policy, outcome, attempt, budget)
            if wait is None:
                if isinstance(outcome, Reply):
                    return outcome
                raise outcome
            with self._lock:
                self.retries[operation] += 1
            log.info("%s failed (%s); retry %d in %.2f s", operation, outcome, attempt, wait)
            time.sleep(wait)

    def _wait(self, policy: Operation, outcome, attempt: int, budget: Deadline) -> float | None:
        """Seconds to wait before asking again, or None when a retry cannot help or not fit."""
        if not policy.read or attempt >= self.settings.read_attempts:
            return None
        if isinstance(outcome, TransportError) and not outcome.retryable:
            return None
        # A Retry-After is honoured up to max_retry_wait: longer patience is the caller's (the sync's
        # circuit breaker reads `retry_after` on the error and keeps its outage budget).
        asked = outcome.retry_after if isinstance(outcome, TransportError) else None
        wait = min(self.settings.max_retry_wait, max(0.2 * 2 ** (attempt - 1), asked or 0)) + random.uniform(0, 0.1)
        return wait if wait < budget.remaining() - 0.01 else None

    def _attempt(self, operation: str, params: dict, policy: Operation, deadline: Deadline, read):
        """A Reply, or the error (not raised) that this attempt met, scrubbed of every secret."""
        answer = self._exchange(operation, self._envelope(operation, params), policy.cap(params), deadline)
        interrupted(answer)
        if isinstance(answer, _Problem):
            error, never_ran = self._problem_error(operation, answer, policy.read), answer.kind == "refused"
        else:
            try:
                return self._read(operation, policy, answer, read)
            except TransportError as failure:
                error = failure
            except Exception as failure:  # noqa: BLE001 (an answer no reader foresaw is still a typed error)
                error = AnswerError(
                    f"The answer could not be read ({type(failure).__name__}); the service (or a proxy on the "
                    "way) answered out of contract.",
                    "پاسخ سرویس خوانده نشد",
                    operation=operation,
                    retryable=False,
                )
            never_ran = isinstance(error, SoapFaultError) and error.fault_code in NEVER_RAN
        error = error if policy.read else self._send_error(operation, error, never_ran)
        return sealed(error)

    def _envelope(self, operation: str, params: dict) -> _Sealed:
        """The request bytes; the password goes in last, into bytes that never show themselves."""
        xml = self._from_template(operation, params) if integers_only(params) else None
        if xml is None:
            xml = self._from_zeep(operation, params)
        secret = escape(self.settings.password.reveal()).encode("utf-8")
        return _Sealed(xml.replace(self._token.encode("ascii"), secret, 1))

    def _from_template(self, operation: str, params: dict) -> bytes | None:
        key = (operation, tuple(params))
        if key not in self._templates:
            self._templates[key] = EnvelopeTemplate.build(lambda values: self._from_zeep(operation, values), key[1])
        template = self._templates[key]
        return None if template is None else template.fill(params)

    def _from_zeep(self, operation: str, params: dict) -> bytes:
        credentials = {} if operation == "Dummy" else {"userName": self.settings.username, "password": self._token}
        try:
            element = self.zeep.create_message(self.service, operation, **credentials, **params)
        except (zeep.exceptions.Error, TypeError, ValueError) as error:
            problem = f"{type(error).__name__}: {error}"
        else:
            return etree.tostring(element, encoding="utf-8", xml_declaration=True)
        raise InputError(
            f"The arguments do not fit the service's contract ({problem}); nothing was sent.",
            "ورودی ها با قرارداد سرویس سازگار نیستند؛ چیزی ارسال نشد",
            operation=operation,
        )

    def _exchange(self, operation: str, body: _Sealed, cap: int, deadline: Deadline) -> Answer | _Problem:
        """POST once; never follows a redirect; reads at most `cap` bytes before the deadline."""
        headers = {
            "Content-Type": "text/xml; charset=utf-8",
            "SOAPAction": f'"{self.binding.get(operation).soapaction}"',
            "Accept-Encoding": "gzip, deflate",
        }
        with self._lock:
            self.calls[operation] += 1
        started = time.perf_counter()
        try:
            if isinstance(self._route, _Problem):
                return self._route
            return exchange(self._route, "POST", body, headers, cap, deadline)
        finally:
            log.debug(
                "%s to %s took %.1f ms", operation, shown_url(self.endpoint), (time.perf_counter() - started) * 1000
            )

    def _read(self, operation: str, policy: Operation, answer: Answer, read) -> Reply:
        if answer.status != 200:
            try:
                response_element(answer.body, operation)
            except SoapFaultError:
                raise
            except AnswerError:
                pass
            raise TransportError(
                f"The service answered HTTP {answer.status} instead of a result.",
                f"سرویس با کد HTTP {answer.status} پاسخ داد",
                operation=operation,
                retryable=answer.status >= 500 or answer.status in (408, 429),
                retry_after=retry_after(answer.headers),
            )
        if read is not None:
            return Reply(answer.body, {"read": read(answer.body, operation)})
        response = response_element(answer.body, operation)
        return Reply(answer.body, read_reply(response, operation, policy.reply))

    @staticmethod
    def _problem_error(operation: str, problem: _Problem, read: bool) -> TransportError:
        if "location" in problem.extra:
            return RedirectRefusedError(
                f"The service's address answered with {problem.detail}; SOAP calls never follow a redirect "
                "(the request carries the password). If the service moved, set PAYAMAK_ENDPOINT to the new address.",
                "سرویس به نشانی دیگری هدایت کرد و دنبال نشد",
                operation=operation,
                location=problem.extra["location"],
                retryable=False,
            )
        kind = AnswerError if problem.kind == "answer" else TransportError
        advice = " Try again, or check the network and the address." if problem.retryable and read else ""
        return kind(
            f"{problem.detail[0].upper()}{problem.detail[1:]}.{advice}",
            "پاسخ سرویس دریافت نشد یا نامعتبر بود",
            operation=operation,
            retryable=problem.retryable,
        )

    @staticmethod
    def _send_error(operation: str, error: TransportError, never_ran: bool) -> TransportError:
        """For a send: not sent only when the request provably never ran; otherwise unknown."""
        if never_ran:
            return NotSentError(
                f"{error.message_en} Nothing was sent; it is safe to try again.",
                "ارسال انجام نشد؛ می توانید دوباره تلاش کنید",
                operation=operation,
                fault_code=error.fault_code,
                retryable=False,
            )
        return SendOutcomeUnknownError(
            f"The send may or may not have gone out: {error.message_en} Do not resend blindly; check the "
            "account's sent messages first (payamak messages --type sent).",
            "معلوم نیست پیامک ارسال شده یا نه؛ پیش از ارسال دوباره، پیامک های ارسالی را بررسی کنید",
            operation=operation,
            fault_code=error.fault_code,
            retryable=False,
        )

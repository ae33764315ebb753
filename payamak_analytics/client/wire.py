"""The one place that posts an envelope, reads the answer and classifies every failure.

What each operation may do is declared once in OPERATIONS: whether it only reads (and may be
asked again), how large its answer may be, which result codes mean "ask again", and the
fields of its reply. Every call has one deadline (the whole of `timeout`, retries included),
enforced by a watchdog that closes the socket, so a server that trickles a byte a second
cannot hold a call; the answer is read in chunks against a size cap, counted before and after
decompression. No redirect is followed and the WSDL and its schemas come only from the
configured host. A failure is raised outside of the code that held the envelope, so no
exception carries the password in its arguments, its context or its frames.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
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
from .settings import Settings

log = logging.getLogger("payamak_analytics.client")

BINDING = "{http://tempuri.org/}BasicHttpBinding_ISendService"
PORT = "BasicHttpBinding_ISendService"
KB, MB = 1024, 1024 * 1024
CHUNK = 64 * KB
DOCUMENT_CAP = 4 * MB  # a WSDL or a schema


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


# --- one deadline per call ----------------------------------------------------------------------
class Deadline:
    """The end of one call's budget; `guard(sock)` closes the socket when it passes."""

    def __init__(self, seconds: float):
        self.end = time.monotonic() + seconds
        self.expired = False
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def guard(self, sock) -> None:
        self.release()
        self._timer = threading.Timer(max(self.remaining(), 0.0), self._cut, (sock,))
        self._timer.daemon = True
        self._timer.start()

    def _cut(self, sock) -> None:
        self.expired = True
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def release(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


_CURRENT = threading.local()


class _Watched:
    """A connection that hands its socket to the current call's deadline before it waits."""

    def getresponse(self, *args, **kwargs):
        deadline = getattr(_CURRENT, "deadline", None)
        if deadline is not None and self.sock is not None:
            deadline.guard(self.sock)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTP(_Watched, urllib3.connection.HTTPConnection):
    pass


class _WatchedHTTPS(_Watched, urllib3.connection.HTTPSConnection):
    pass


class _HTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTP


class _HTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPS


class DeadlineAdapter(HTTPAdapter):
    """requests' adapter with watched connections and no retries of its own."""

    def __init__(self):
        super().__init__(pool_connections=4, pool_maxsize=32, max_retries=0)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}


# --- reading an answer --------------------------------------------------------------------------
class _Sealed(bytes):
    """Request bytes that hold the password: they never show themselves."""

    def __repr__(self) -> str:
        return f"<envelope, {len(self)} bytes>"

    __str__ = __repr__


@dataclass
class Answer:
    status: int
    headers: dict
    body: bytes


@dataclass
class _Problem:
    """A failure, described where it happened and raised where no secret is in scope."""

    kind: str  # "refused": never reached the service; "lost": left, then no answer; "answer": read
    detail: str
    retryable: bool = True
    extra: dict = field(default_factory=dict)


def _decoder(encoding: str):
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip", "deflate"):
        return zlib.decompressobj(wbits=47)  # gzip or zlib, told apart by their header
    raise ValueError(encoding)


def read_body(response: requests.Response, cap: int, deadline: Deadline) -> bytes | _Problem:
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
            data = response.raw.read1(CHUNK, decode_content=False)
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
    if deadline.expired or deadline.remaining() <= 0:
        return _Problem("lost", "no complete answer before the deadline (timeout)")
    if decoder is not None and not decoder.eof:
        return _Problem("answer", "the compressed answer was cut off")
    return b"".join(chunks)


def _inflate(decoder, data: bytes, room: int) -> bytes:
    """`data` decompressed, at most `room` bytes of it (room is one past the cap, so output
    that fills it is over the cap; the rest stays unread in the decoder)."""
    return data if decoder is None else decoder.decompress(data, room)


def _never_connected(error: BaseException) -> bool:
    """Whether a requests error says no connection was ever made (refused, unknown host, connect
    timeout, TLS handshake): the request never left."""
    seen, todo = 0, [error]
    while todo and seen < 12:
        current = todo.pop()
        seen += 1
        if isinstance(current, (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError)):
            return True
        if isinstance(current, (requests.exceptions.ConnectTimeout, requests.exceptions.SSLError)):
            return True
        todo += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        todo += [c for c in (getattr(current, "reason", None), current.__cause__, current.__context__) if c]
    return False


def retry_after(headers) -> float | None:
    """Seconds a Retry-After header asks for (a number or an HTTP date), None when absent or unreadable."""
    value = (headers.get("Retry-After") or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


# --- the service description, only from where it was asked for --------------------------------
def _origin(address: str) -> tuple[str, str] | None:
    parts = urlsplit(address)
    return (parts.scheme.lower(), parts.netloc.lower()) if parts.scheme in ("http", "https") else None


class GuardedTransport(zeep.Transport):
    """zeep's document loader, restricted: documents come only from the configured WSDL's host
    (or the endpoint's), or from the folder of a local WSDL; no redirect; a size cap and a deadline."""

    def __init__(self, settings: Settings, session: requests.Session, cache):
        super().__init__(cache=cache, timeout=settings.timeout, operation_timeout=settings.timeout, session=session)
        self.origins = {o for o in (_origin(settings.wsdl), _origin(settings.endpoint or "")) if o}
        local = _origin(settings.wsdl) is None
        self.folder = Path(settings.wsdl).expanduser().resolve().parent if local else None
        self.documents: dict[str, bytes] = {}  # what the service description was read from, by address

    def load(self, url: str) -> bytes:
        content = self._load_allowed(url)
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
            return path.read_bytes()
        if origin not in self.origins:
            raise TransportError(
                f"The service description points at {url}, another host than the configured one; refused. "
                "Use the bundled contract (PAYAMAK_WSDL=bundled) with PAYAMAK_ENDPOINT if that is expected.",
                "توضیحات سرویس به میزبان دیگری اشاره می کرد و پذیرفته نشد",
                retryable=False,
            )
        cache = self.cache if self.cache and not _on_this_machine(url) else None
        cached = cache.get(url) if cache else None
        if cached:
            return bytes(cached)
        content = fetch_document(self.session, url, self.load_timeout)
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


def fetch_document(session: requests.Session, url: str, timeout: float) -> bytes:
    """GET one document: no redirect, one deadline, at most DOCUMENT_CAP bytes."""
    deadline = Deadline(timeout)
    _CURRENT.deadline = deadline
    try:
        response = session.get(url, timeout=(timeout, timeout), stream=True, allow_redirects=False)
        with response:
            body = read_body(response, DOCUMENT_CAP, deadline) if response.status_code == 200 else None
    except requests.RequestException as error:
        body = _Problem("refused", f"could not connect ({type(error).__name__})")
    finally:
        _CURRENT.deadline = None
        deadline.release()
    if isinstance(body, bytes):
        return body
    detail = body.detail if body is not None else f"HTTP {response.status_code}"
    raise TransportError(
        f"Could not load the service description from {url}: {detail}. Check the address (PAYAMAK_WSDL) and "
        "the network, or use wsdl='bundled' with endpoint=.",
        "توضیحات سرویس (WSDL) بارگیری نشد",
        retryable=body is not None and body.retryable,
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
    except (requests.RequestException, OSError, etree.XMLSyntaxError, zeep.exceptions.Error, ValueError) as error:
        failure = TransportError(
            f"Could not load the service description from {settings.wsdl}: {type(error).__name__}: {error}. "
            "Check the address (PAYAMAK_WSDL) and the network, or use wsdl='bundled' with endpoint=.",
            "توضیحات سرویس (WSDL) بارگیری نشد",
        )
    raise failure


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
    """One session and one service description; `call` and `call_raw` are the only ways out."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.session = requests.Session()
        adapter = DeadlineAdapter()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.zeep = load_service(settings, self.session)
        self.binding = self.zeep.wsdl.bindings[BINDING]
        declared = next(iter(self.zeep.wsdl.services.values())).ports[PORT].binding_options["address"]
        self.endpoint = settings.endpoint or declared
        if settings.endpoint is None and _origin(settings.wsdl) and _origin(declared) != _origin(settings.wsdl):
            self.close()
            raise TransportError(
                f"The service description sends calls to {declared}, another host than {settings.wsdl}; "
                "refused, as the calls carry the password. Set PAYAMAK_ENDPOINT if that address is right.",
                "نشانی سرویس در WSDL به میزبان دیگری اشاره می کرد",
                retryable=False,
            )
        self.service = self.zeep.create_service(BINDING, self.endpoint)
        self.operations = frozenset(name for name in self.binding.all() if name in OPERATIONS)
        self.calls: Counter[str] = Counter()
        self.retries: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._token = secrets.token_hex(16)

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

    def call_raw(self, operation: str, params: dict) -> bytes:
        """The bytes of a checked answer (SOAP, not a fault, within the caps), with the retry policy."""
        return self.call(operation, params).raw

    def call(self, operation: str, params: dict) -> Reply:
        """One operation, retried only if it reads and a retry can help, only within the call's budget."""
        policy = self.policy(operation)
        budget = Deadline(self.settings.call_budget)
        attempt = 0
        while True:
            attempt += 1
            deadline = Deadline(min(self.settings.timeout, budget.remaining()))
            outcome = self._attempt(operation, params, policy, deadline)
            retry_answer = isinstance(outcome, Reply) and outcome.result in policy.retry_results
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

    def _attempt(self, operation: str, params: dict, policy: Operation, deadline: Deadline):
        """A Reply, or the error (not raised) that this attempt met."""
        answer = self._exchange(operation, self._envelope(operation, params), policy.cap(params), deadline)
        if isinstance(answer, _Problem):
            error, never_ran = self._problem_error(operation, answer), answer.kind == "refused"
        else:
            try:
                return self._read(operation, policy, answer)
            except TransportError as failure:
                error = failure
            never_ran = isinstance(error, SoapFaultError) and error.fault_code in NEVER_RAN
        return error if policy.read else self._send_error(operation, error, never_ran)

    def _envelope(self, operation: str, params: dict) -> _Sealed:
        """The request bytes; the password goes in last, into bytes that never show themselves."""
        credentials = {} if operation == "Dummy" else {"userName": self.settings.username, "password": self._token}
        try:
            element = self.zeep.create_message(self.service, operation, **credentials, **params)
        except (zeep.exceptions.Error, TypeError, ValueError) as error:
            problem = f"{type(error).__name__}: {error}"
        else:
            xml = etree.tostring(element, encoding="utf-8", xml_declaration=True)
            secret = escape(self.settings.password.reveal()).encode("utf-8")
            return _Sealed(xml.replace(self._token.encode("ascii"), secret, 1))
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
        limit = max(deadline.remaining(), 0.001)
        _CURRENT.deadline = deadline
        try:
            response = self.session.post(
                self.endpoint, data=body, headers=headers, timeout=(limit, limit), stream=True, allow_redirects=False
            )
            with response:
                if 300 <= response.status_code < 400:
                    location = urljoin(self.endpoint, response.headers.get("Location", ""))
                    return _Problem(
                        "answer",
                        f"HTTP {response.status_code} redirect to {location}",
                        False,
                        extra={"location": location},
                    )
                read = read_body(response, cap, deadline)
                return (
                    read if isinstance(read, _Problem) else Answer(response.status_code, dict(response.headers), read)
                )
        except requests.RequestException as error:
            if deadline.expired:
                return _Problem("lost", "no complete answer before the deadline (timeout)")
            kind = "refused" if _never_connected(error) else "lost"
            return _Problem(
                kind,
                f"{'could not connect' if kind == 'refused' else 'the connection failed'} ({type(error).__name__})",
            )
        finally:
            _CURRENT.deadline = None
            deadline.release()
            log.debug("%s to %s took %.1f ms", operation, self.endpoint, (time.perf_counter() - started) * 1000)

    def _read(self, operation: str, policy: Operation, answer: Answer) -> Reply:
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
        response = response_element(answer.body, operation)
        return Reply(answer.body, read_reply(response, operation, policy.reply))

    @staticmethod
    def _problem_error(operation: str, problem: _Problem) -> TransportError:
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
        advice = " Try again, or check the network and the address." if problem.retryable else ""
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

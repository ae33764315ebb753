"""The wire under faults of the network itself: "not sent" is what the connection proved, every
failure of an exchange is typed, names and handshakes fit in the deadline, the service
description has one budget, and no secret a server echoes reaches an error, a log or a report."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import escape, unescape

import pytest
import zeep
from lxml import etree

from payamak_analytics import PanelClient, errors
from payamak_analytics.wsdl import WSDL_PATH

from .hostile_server import SOAP_ENV, HostileServer, Request, answer, by_operation, http, read_request, soap

SECRET = "S3cret-پسورد&<x> ok"
LINE, NUMBER = "10002188", "09121234567"
ROOT = Path(__file__).resolve().parents[1]
WSDL_NS, XSD = "http://schemas.xmlsoap.org/wsdl/", "http://www.w3.org/2001/XMLSchema"


def client_of(url: str, **options) -> PanelClient:
    options = {"timeout": 2, "max_retry_wait": 0.05, **options}
    return PanelClient("demo", SECRET, wsdl="bundled", endpoint=url, **options)


def everything_shown(error: BaseException) -> str:
    """All an error lets anyone see: its text, attributes, chain, and the locals of every frame it
    passed through (this test's own frames left out)."""
    seen = ""
    while error is not None:
        tb = error.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        seen += "".join(traceback.TracebackException(type(error), error, tb, capture_locals=True).format())
        seen += str(error) + repr(vars(error)) + repr(error.args)
        for frame, _ in traceback.walk_tb(tb):
            seen += "".join(
                bytes(v).decode("utf-8", "replace") if isinstance(v, bytes) else repr(v)
                for v in frame.f_locals.values()
            )
        error = error.__context__ or error.__cause__
    return seen


def assert_no_secret(text: str) -> None:
    for form in (SECRET, escape(SECRET), quote(SECRET, safe="")):
        assert form not in text


# --- a TLS service on loopback, with a certificate made for the test ---------------------------
@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + [
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(folder / "key.pem"),
            "-out",
            str(folder / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return folder


class TLSService:
    """Reads each request whole over TLS (so the operation ran), then answers by `mode`:
    "garble" writes a TLS record that fails its integrity check; "ok" answers the send."""

    def __init__(self, folder: Path, mode: str):
        self.mode, self.received = mode, []
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
        self.listener = socket.create_server(("127.0.0.1", 0))
        threading.Thread(target=self.serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.listener.getsockname()[1]}/svc"

    def serve(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self.handle, args=(raw,), daemon=True).start()

    def handle(self, raw: socket.socket) -> None:
        try:
            connection = self.context.wrap_socket(raw, server_side=True)
            request = read_request(connection)
            if request is None:
                return
            self.received.append(request)
            if self.mode == "garble":
                socket.socket(fileno=os.dup(connection.fileno())).sendall(b"\x17\x03\x03\x00\x20" + os.urandom(32))
                time.sleep(1)
                return
            connection.sendall(
                http(
                    "200 OK",
                    soap(
                        request.operation,
                        f"<{request.operation}Result>0</{request.operation}Result><batchSmsId>7</batchSmsId>",
                    ),
                )
            )
        except (OSError, ssl.SSLError):
            pass
        finally:
            raw.close()

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def trusted(certificate, monkeypatch) -> Path:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate / "cert.pem"))
    return certificate


# --- "not sent" only when no byte of the request was written --------------------------------------
def test_a_tls_error_after_the_request_ran_is_unknown_not_unsent(trusted):
    service = TLSService(trusted, "garble")
    try:
        client = client_of(service.url, read_attempts=2)
        with pytest.raises(errors.SendOutcomeUnknownError):
            client.send_batch_sms(LINE, [NUMBER], "hi")
        assert len(service.received) == 1 and client.calls["SendBatchSms"] == 1  # it ran, once
        with pytest.raises(errors.TransportError) as caught:
            client.get_credit()
        assert not isinstance(caught.value, errors.NotSentError) and client.calls["GetCredit"] == 2  # a read retries
    finally:
        service.close()


def test_a_tls_service_that_answers_is_used(trusted):
    service = TLSService(trusted, "ok")
    try:
        assert client_of(service.url).send_batch_sms(LINE, [NUMBER], "hi").batch_sms_id == 7
    finally:
        service.close()


def serve_each(listener: socket.socket, handle) -> socket.socket:
    """Hand every connection `listener` accepts to `handle`, in a thread of its own, until it is closed."""

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener


def dripping_handshake(request_seen: list) -> socket.socket:
    """A TCP server that answers a TLS hello with a record header promising 64 KB, then one byte
    every 0.3 s: the handshake never ends."""
    listener = socket.create_server(("127.0.0.1", 0))

    def drip(connection: socket.socket) -> None:
        try:
            request_seen.append(connection.recv(65536))
            connection.sendall(b"\x16\x03\x03\xff\xff")
            for _ in range(100):
                connection.sendall(b"\x00")
                time.sleep(0.3)
        except OSError:
            pass

    return serve_each(listener, drip)


def test_a_dripped_tls_handshake_fits_in_the_deadline_and_means_not_sent(trusted):
    hellos: list = []
    listener = dripping_handshake(hellos)
    url = f"https://127.0.0.1:{listener.getsockname()[1]}/svc"
    try:
        client = client_of(url, timeout=1, call_budget=2)
        started = time.monotonic()
        with pytest.raises(errors.NotSentError):  # the handshake never finished: nothing was written
            client.send_batch_sms(LINE, [NUMBER], "hi")
        with pytest.raises(errors.TransportError):
            client.get_credit()
        assert time.monotonic() - started < 6  # generous: 1 s for the send, a 2 s budget for the read
        assert hellos and all(hello[:1] == b"\x16" for hello in hellos)  # only TLS hellos reached it
    finally:
        listener.close()


def test_a_slow_name_resolution_fits_in_the_deadline_and_never_writes_late(monkeypatch):
    """A resolver slower than the deadline: the call gives up in time, and when the name finally
    resolves, the abandoned attempt writes nothing."""
    real = socket.getaddrinfo
    resolved = threading.Event()

    def slow(host, *args, **kwargs):
        if host == "payamak.slow.test":
            time.sleep(2.5)
            resolved.set()
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow)
    with HostileServer(
        {"/svc": answer("200 OK", soap("SendBatchSms", "<SendBatchSmsResult>0</SendBatchSmsResult>"))}
    ) as server:
        port = server.server.server_address[1]
        client = client_of(f"http://payamak.slow.test:{port}/svc", timeout=1, call_budget=1)
        started = time.monotonic()
        with pytest.raises(errors.NotSentError, match="deadline"):
            client.send_batch_sms(LINE, [NUMBER], "hi")
        assert time.monotonic() - started < 2  # generous: the deadline is 1 s, the resolver takes 2.5 s
        assert resolved.wait(5)
        time.sleep(0.5)
        assert server.requests == []  # the late answer of the resolver led to nothing being sent


def test_a_connection_closed_after_the_request_was_read_is_unknown():
    def read_then_close(request: Request, connection: socket.socket) -> None:
        connection.shutdown(socket.SHUT_RDWR)

    with HostileServer({"/svc": read_then_close}) as server:
        with pytest.raises(errors.SendOutcomeUnknownError):
            client_of(server.url("svc")).send_sms(LINE, [NUMBER], "hi")
        assert len(server.requests) == 1


def test_tls_trusts_what_requests_trusts_not_the_systems_store(certificate, monkeypatch):
    """Without REQUESTS_CA_BUNDLE, requests checks a certificate against its own bundle (certifi),
    not OpenSSL's default store (SSL_CERT_FILE, the system's CAs): a service only the system
    store trusts is refused, before anything is written."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate / "cert.pem"))
    service = TLSService(certificate, "ok")
    try:
        with pytest.raises(errors.NotSentError, match="SSLError"):
            client_of(service.url).send_batch_sms(LINE, [NUMBER], "hi")
        assert service.received == []
    finally:
        service.close()


def forwarding_then_dropping(request: Request, connection: socket.socket) -> None:
    """A proxy that took the whole request (and passed it on), then lost the connection."""
    connection.shutdown(socket.SHUT_RDWR)


def test_a_send_a_proxy_took_and_dropped_is_unknown_not_unsent(monkeypatch):
    """A proxy from the environment (HTTP_PROXY) connects through requests' proxy manager: its
    connections record their writes too, so a send the proxy read whole is never "not sent"."""
    target = "http://payamak.proxied.test/svc"
    with HostileServer({target: forwarding_then_dropping}) as proxy:
        for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", proxy.base)
        client = client_of(target)
        with pytest.raises(errors.SendOutcomeUnknownError):
            client.send_sms(LINE, [NUMBER], "hi")
        assert [request.path for request in proxy.requests] == [target]
        proxy.behaviours[target] = answer("200 OK", soap("GetCredit", "<GetCreditResult>5</GetCreditResult>"))
        assert client.get_credit() == 5  # and a proxy that answers is used


def tunnelling_proxy(refuse: bool) -> socket.socket:
    """An HTTPS proxy: CONNECT opens a tunnel to the address asked for, or is refused (403)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def handle(connection: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            head += connection.recv(4096)
        if refuse:
            connection.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            connection.close()
            return
        host, port = head.split()[1].decode().rsplit(":", 1)
        upstream = socket.create_connection((host, int(port)))
        connection.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        threading.Thread(target=pipe, args=(connection, upstream), daemon=True).start()
        pipe(upstream, connection)

    return serve_each(listener, handle)


@pytest.mark.parametrize(
    "mode, refuse, outcome",
    [("ok", False, None), ("garble", False, errors.SendOutcomeUnknownError), ("ok", True, errors.NotSentError)],
)
def test_a_send_through_an_https_proxy_is_recorded_past_the_tunnel(trusted, monkeypatch, mode, refuse, outcome):
    """Through HTTPS_PROXY: the tunnel's CONNECT is not the request (a refused tunnel is not
    sent), the request inside it is (a garbled answer to it is unknown)."""
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    service, proxy = TLSService(trusted, mode), tunnelling_proxy(refuse)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
    try:
        client = client_of(service.url)
        if outcome is None:
            assert client.send_batch_sms(LINE, [NUMBER], "hi").batch_sms_id == 7
        else:
            with pytest.raises(outcome):
                client.send_batch_sms(LINE, [NUMBER], "hi")
        assert len(service.received) == (0 if refuse else 1)
    finally:
        service.close()
        proxy.close()


def test_a_write_and_a_give_up_at_the_same_moment_agree():
    """The caller may give up between any two steps of the worker: once told "nothing was
    written", the attempt must refuse to write; once a write is claimed, giving up says written."""
    from payamak_analytics.client.wire import Abandoned, Attempt, Deadline

    attempt = Attempt(Deadline(5))
    told: list[bool] = []

    class GivingUpAfterEachRelease:
        """A lock after each release of which the caller gives up (once): the worker preempted there."""

        def __init__(self) -> None:
            self.lock = threading.Lock()

        def __enter__(self) -> None:
            self.lock.acquire()

        def __exit__(self, *exc) -> None:
            self.lock.release()
            if not told and not attempt.abandoned:
                told.append(None)  # (abandon takes this lock too: give up once, not on its own release)
                told[-1] = attempt.abandon()

    attempt._lock = GivingUpAfterEachRelease()
    try:
        attempt.watch(None, writing=True)
    except Abandoned:
        assert told == [False]  # told not written, and it was not
    else:
        assert told == [True]  # the write goes ahead: giving up must have said so


def test_a_deadline_never_cuts_a_connection_its_attempt_has_let_go_of():
    """A connection back in the pool may be the next request's: the deadline of the attempt that
    used it before must not cut it; while the attempt still holds it, the cut is what ends it."""
    from payamak_analytics.client.wire import Attempt, Deadline

    class Connection:
        def __init__(self) -> None:
            self.sock, self.peer = socket.socketpair()

    let_go, held = Connection(), Connection()
    done = Attempt(Deadline(5))
    done.watch(let_go, writing=True)
    assert done.finish() is False  # not cut: back to the pool
    assert done.abandon() is True  # the deadline passes later: written, and nothing cut
    let_go.sock.sendall(b"next request")
    assert let_go.peer.recv(100) == b"next request"
    running = Attempt(Deadline(5))
    running.watch(held, writing=True)
    running.abandon()
    assert running.finish() is True  # cut: the pool closes it rather than reuse it
    with pytest.raises(OSError):
        held.sock.sendall(b"x")


# --- the request is the envelope zeep writes --------------------------------------------------------
MESSAGE_ID = re.compile(rb"<wsa:MessageID>urn:uuid:([0-9a-f-]{36})</wsa:MessageID>")


def test_every_request_is_the_envelope_zeep_writes_with_a_message_id_of_its_own():
    """Report pages and deliveries are filled into an envelope zeep wrote once: each request must
    still be, byte for byte, what zeep writes for it (the password escaped), with a new MessageID."""
    asked = [
        ("GetBatchDelivery", {"batchSmsId": 1, "index": 1, "count": 100}),
        ("GetBatchDelivery", {"batchSmsId": 2**31 - 1, "index": 101, "count": 7}),
        ("GetDelivery", {"recId": 2**63 - 1}),
        ("GetBatchDelivery", {"batchSmsId": 12, "index": 1, "count": 100}),
    ]
    answers = {
        "GetBatchDelivery": soap("GetBatchDelivery", "<GetBatchDeliveryResult>-2</GetBatchDeliveryResult>"),
        "GetDelivery": soap("GetDelivery", "<GetDeliveryResult>1</GetDeliveryResult>"),
    }
    with HostileServer({"/svc": by_operation(answers)}) as server:
        client = client_of(server.url("svc"))
        for operation, params in asked:
            try:
                if operation == "GetDelivery":
                    client.get_delivery(params["recId"])
                else:
                    client.get_batch_delivery(params["batchSmsId"], params["index"], params["count"])
            except errors.NotFoundError:
                pass
    sent = [request.body for request in server.requests]
    oracle = zeep.Client(str(WSDL_PATH))
    service = oracle.create_service("{http://tempuri.org/}BasicHttpBinding_ISendService", server.url("svc"))
    for body, (operation, params) in zip(sent, asked, strict=True):
        element = oracle.create_message(service, operation, userName="demo", password=SECRET, **params)
        expected = etree.tostring(element, encoding="utf-8", xml_declaration=True)
        assert MESSAGE_ID.sub(b"", body) == MESSAGE_ID.sub(b"", expected)
    ids = [MESSAGE_ID.search(body).group(1) for body in sent]
    assert len(set(ids)) == len(sent)


# --- every exception of an exchange is typed, the envelope nowhere ------------------------------
@pytest.mark.parametrize("where", ["http://[::1/x", "http://exa mple.com/\x00", "//[bad"])
def test_a_malformed_redirect_is_a_typed_error_without_the_envelope(where):
    with HostileServer({"/r": answer("302 Found", b"", ("Location", where))}) as server:
        client = client_of(server.url("r"))
        for call, kind in (
            (client.get_credit, errors.RedirectRefusedError),
            (lambda: client.send_batch_sms(LINE, [NUMBER], "hi"), errors.SendOutcomeUnknownError),
        ):
            with pytest.raises(kind) as caught:
                call()
            assert_no_secret(everything_shown(caught.value))


@pytest.mark.parametrize(
    "address",
    [
        "http://svcuser:BasicPass99@127.0.0.1:99999/svc",
        "http://svcuser:BasicPass99@exa mple.com/svc",
        "ftp://svcuser:BasicPass99@127.0.0.1/svc",
        "http://svcuser:BasicPass99@\u2603\u2603..com/svc",
        "http://svcuser:BasicPass99@[::1/svc",
    ],
)
def test_an_address_requests_cannot_use_is_a_typed_error_without_its_user_info(address):
    """An endpoint requests refuses to parse (a port out of range, a bad host, no adapter for its
    scheme) is a typed error, whenever it is met, holding neither the password nor the user-info."""
    with pytest.raises(errors.TransportError) as caught:
        client_of(address).get_credit()
    shown = everything_shown(caught.value)
    assert "BasicPass99" not in shown
    assert_no_secret(shown)


# --- a secret a server echoes is scrubbed from errors, logs, the report and the command line ----
def echoing(form):
    """A server that writes the request's password back, in `form`, into each place a text can go."""

    def password(request: Request) -> str:
        body = request.body.decode()
        start = body.index("password>") + len("password>")
        return form(unescape(body[start : body.index("</", start)]))

    def fault(request, connection):
        body = (
            f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><s:Fault><faultcode>s:Server</faultcode>'
            f"<faultstring>Login failed: {escape(password(request))}</faultstring></s:Fault></s:Body></s:Envelope>"
        )
        connection.sendall(http("500 Internal Server Error", body.encode()))

    def value(request, connection):
        result = f"<{request.operation}Result>{escape(password(request))}</{request.operation}Result>"
        connection.sendall(http("200 OK", soap(request.operation, result)))

    def location(request, connection):
        connection.sendall(http("302 Found", b"", ("Location", f"http://login.example/?p={password(request)}")))

    return {"/fault": fault, "/value": value, "/location": location}


FORMS = {"as is": lambda raw: raw, "xml-escaped": escape, "url-encoded": lambda raw: quote(raw, safe="")}


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("path", ["fault", "value", "location"])
def test_an_echoed_password_reaches_no_error_and_no_log(form, path, caplog):
    caplog.set_level(logging.DEBUG)
    with HostileServer(echoing(FORMS[form])) as server:
        client = client_of(server.url(path), read_attempts=2)
        for call in (client.get_credit, lambda: client.send_sms(LINE, [NUMBER], "hi")):
            with pytest.raises(errors.TransportError) as caught:
                call()
            assert_no_secret(everything_shown(caught.value))
    assert_no_secret(caplog.text + "".join(r.getMessage() for r in caplog.records))
    if path == "fault":  # the retry of the read was logged, scrubbed
        assert any("Login failed: ***" in r.getMessage() for r in caplog.records)


OTHER_FORMS = {
    "every byte percent-encoded": lambda raw: "".join(f"%{byte:02x}" for byte in raw.encode()),
    "percent-encoded in part": lambda raw: raw[:3] + "".join(f"%{byte:02X}" for byte in raw[3:8].encode()) + raw[8:],
    "character references": lambda raw: "".join(
        f"&#{ord(ch)};" if i % 2 else f"&#x{ord(ch):x};" for i, ch in enumerate(raw)
    ),
    "json escapes": lambda raw: json.dumps(raw)[1:-1],
    "base64": lambda raw: base64.b64encode(raw.encode()).decode(),
    "base64 of user:password": lambda raw: base64.b64encode(f"demo:{raw}".encode()).decode(),
    "base64 wrapped at 76 columns": lambda raw: base64.encodebytes(b"x" * 50 + raw.encode()).decode().strip(),
    "folded over lines": lambda raw: f"{raw[:5]}\n {raw[5:]}",
}


@pytest.mark.parametrize("form", OTHER_FORMS)
@pytest.mark.parametrize("path", ["fault", "location"])
def test_a_password_echoed_in_any_encoding_reaches_no_error_and_no_log(form, path, caplog):
    """A server may write the password back in any encoding, or a mix of them: none shows."""
    caplog.set_level(logging.DEBUG)
    written = OTHER_FORMS[form]
    with HostileServer(echoing(written)) as server:
        client = client_of(server.url(path), read_attempts=2)
        for call in (client.get_credit, lambda: client.send_sms(LINE, [NUMBER], "hi")):
            with pytest.raises(errors.TransportError) as caught:
                call()
            shown = everything_shown(caught.value) + caplog.text
            assert written(SECRET) not in shown and written(SECRET)[4:-4] not in shown


def test_every_logger_of_the_package_is_redacted(caplog):
    client_of("http://127.0.0.1:9/x")  # a client exists: its secret is known
    caplog.set_level(logging.DEBUG)
    for name in ("payamak_analytics", "payamak_analytics.client", "payamak_analytics.campaign.deep.child"):
        logging.getLogger(name).warning("echoed %s and %s", SECRET, quote(SECRET, safe=""))
    assert len(caplog.records) == 3
    assert_no_secret(caplog.text)


def run_cli(*args: str, endpoint: str, tmp_path: Path) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PAYAMAK_USERNAME": "demo",
        "PAYAMAK_PASSWORD": SECRET,
        "PAYAMAK_WSDL": "bundled",
        "PAYAMAK_ENDPOINT": endpoint,
    }
    command = [sys.executable, "-m", "payamak_analytics.cli", "--timeout", "2", *args]
    return subprocess.run(
        command, check=False, env=environment, capture_output=True, text=True, cwd=tmp_path, timeout=120
    )


@pytest.mark.slow
def test_doctor_and_the_command_line_stay_clean_when_the_service_echoes(tmp_path):
    with HostileServer(echoing(FORMS["as is"])) as server:
        doctor = run_cli(
            "doctor", "--json", str(tmp_path / "doctor.json"), endpoint=server.url("fault"), tmp_path=tmp_path
        )
        credit = run_cli("credit", endpoint=server.url("fault"), tmp_path=tmp_path)
    report = (tmp_path / "doctor.json").read_text(encoding="utf-8")
    assert doctor.returncode == 1 and "Login failed" in report
    assert credit.returncode == 1 and "Login failed: ***" in credit.stderr and "Traceback" not in credit.stderr
    assert_no_secret(doctor.stdout + doctor.stderr + report + credit.stdout + credit.stderr)


# --- the password is a Secret from the first line of the entry points -----------------------------
@pytest.mark.parametrize(
    "options",
    [
        {"wsdl": "http://127.0.0.1:9/x?wsdl", "cache_wsdl": False, "timeout": 1},
        {"wsdl": "bundled", "endpoint": "http://127.0.0.1:9/x", "timeout": 0},
        {"wsdl": "bundled", "no_such_option": 1},
    ],
)
@pytest.mark.parametrize("given", ["argument", "environment"])
def test_a_client_that_cannot_be_built_holds_no_password_in_its_frames(options, given, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PAYAMAK_USERNAME", "demo")
    monkeypatch.setenv("PAYAMAK_PASSWORD", SECRET)
    with pytest.raises(errors.PayamakError) as caught:
        PanelClient(password=SECRET if given == "argument" else None, **options)
    shown = everything_shown(caught.value)
    assert SECRET not in shown and escape(SECRET) not in shown
    assert given == "environment" or "Secret('***')" in shown  # the argument was wrapped at once


def test_a_client_that_cannot_be_built_holds_no_other_secret_of_the_environment(monkeypatch, tmp_path):
    """The frames of a failed build hold only the client's own variables: another account's
    password, a mail login or any other secret in the environment or .env stays out of them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PAYAMAK_USERNAME", raising=False)
    monkeypatch.setenv("PAYAMAK_PASSWORD", SECRET)
    monkeypatch.setenv("PAYAMAK_PASSWORD_SHOP", "Shop-Secret-2")
    (tmp_path / ".env").write_text("PAYAMAK_SMTP_PASSWORD=Smtp-Secret-3\n", encoding="utf-8")
    with pytest.raises(errors.InputError, match="No credentials") as caught:
        PanelClient(wsdl="bundled")
    shown = everything_shown(caught.value)
    assert "Shop-Secret-2" not in shown and "Smtp-Secret-3" not in shown and SECRET not in shown


def test_repr_never_raises_even_half_built():
    half = PanelClient.__new__(PanelClient)
    assert repr(half) == "PanelClient(username=None, endpoint=None)"


# --- credentials in a URL are never shown -------------------------------------------------------
def test_url_user_info_is_hidden_in_errors_repr_and_logs(caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(errors.TransportError) as caught:
        PanelClient(
            "demo",
            "pw",
            wsdl="http://svcuser:BasicPass99@127.0.0.1:9/SendService.svc?wsdl",
            cache_wsdl=False,
            timeout=1,
        )
    shown = str(caught.value) + repr(vars(caught.value)) + repr(caught.value.args)
    assert "BasicPass99" not in shown and "***@127.0.0.1" in str(caught.value)
    with HostileServer(
        {"/svc": answer("503 Service Unavailable", b"down BasicPass99", content_type="text/plain")}
    ) as server:
        url = server.url("svc").replace("http://", "http://svcuser:BasicPass99@")
        client = PanelClient(
            "demo", "pw", wsdl="bundled", endpoint=url, timeout=1, read_attempts=2, max_retry_wait=0.05
        )
        with pytest.raises(errors.TransportError) as caught:
            client.get_credit()
        assert server.requests[0].headers["authorization"].startswith("Basic ")  # the credentials still work
    shown = str(caught.value) + repr(vars(caught.value)) + repr(client) + repr(client.settings) + client.endpoint
    assert "BasicPass99" not in shown + caplog.text and "***@127.0.0.1" in repr(client)


# --- one budget for the whole service description -----------------------------------------------
def chain(server: HostileServer, late: float = 0.0, padding: int = 0):
    """A WSDL whose schemas import one another endlessly: ?xsd=1 -> ?xsd=2 -> ..."""

    def behaviour(request, connection):
        query = request.path.split("?", 1)[-1]
        n = 0 if query == "wsdl" else int(query.split("=")[1])
        schema = (
            f'<xsd:schema xmlns:xsd="{XSD}" targetNamespace="urn:n{n}"><xsd:import namespace="urn:n{n + 1}" '
            f'schemaLocation="{server.url("svc")}?xsd={n + 1}"/><!--{"x" * padding}--></xsd:schema>'
        )
        document = (
            f'<wsdl:definitions xmlns:wsdl="{WSDL_NS}" targetNamespace="http://tempuri.org/"><wsdl:types>'
            f"{schema}</wsdl:types></wsdl:definitions>"
            if n == 0
            else schema
        )
        time.sleep(late)
        connection.sendall(http("200 OK", document.encode()))

    return behaviour


@pytest.mark.parametrize("late, padding", [(0.0, 0), (0.0, 1_000_000), (0.6, 0)])
def test_a_description_that_never_ends_is_refused_within_its_budget(late, padding):
    with HostileServer() as server:
        server.behaviours["/svc"] = chain(server, late, padding)
        with pytest.raises(errors.TransportError) as caught:
            PanelClient("demo", "pw", wsdl=server.url("svc") + "?wsdl", cache_wsdl=False, timeout=1, call_budget=2)
        assert "documents" in str(caught.value) or "description" in str(caught.value)
        fetched = len(server.requests)
    assert fetched <= 32 and (late == 0 or fetched <= 4)  # 2 s of budget holds at most 4 documents 0.6 s late
    assert padding == 0 or fetched <= 17  # 16 MB for the whole description


def test_the_simulators_description_loads_whole(simulator):
    client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url, cache_wsdl=False)
    assert client.get_credit() >= 0 and len(client.wire.zeep.transport.documents) >= 2
    assert json.dumps(sorted(client.operations))


def test_a_password_echoed_as_a_tag_name_is_scrubbed_whatever_its_case():
    def tag(request, connection):
        body = f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><Hunter2Secret/></s:Body></s:Envelope>'
        connection.sendall(http("200 OK", body.encode()))

    with HostileServer({"/tag": tag}) as server:
        client = PanelClient("demo", "Hunter2Secret", wsdl="bundled", endpoint=server.url("tag"), timeout=2)
        with pytest.raises(errors.AnswerError, match=r"<\*\*\*>") as caught:
            client.get_credit()
    assert "hunter2secret" not in everything_shown(caught.value).lower()


def test_a_password_is_never_written_by_pickle_and_copies_stay_secret():
    """A pickled client or Secret (a notebook's session dump, a process pool) would write the
    password to a file in clear: it is refused; copies are the same Secret."""
    import copy
    import pickle

    from payamak_analytics.client.safety import Secret

    client = client_of("http://127.0.0.1:9/x")
    for thing in (client.settings.password, client.settings, client):
        with pytest.raises(TypeError, match="not pickled"):
            pickle.dumps(thing)
    secret = Secret(SECRET)
    assert copy.copy(secret) is secret and copy.deepcopy(secret) is secret

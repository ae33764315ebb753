"""Deadlines, "not sent" and secrets under a hostile network, now that an attempt runs in its
caller's thread and one watchman cuts it at its deadline: against real loopback servers."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import ssl
import threading
import time
from pathlib import Path

import pytest

from payamak_analytics import errors
from payamak_analytics.client import wire

from .hostile_server import HostileServer, by_operation, http, read_request, soap, trickle
from .test_client_wire import (  # noqa: F401 (certificate, trusted: fixtures)
    LINE,
    NUMBER,
    TLSService,
    assert_no_secret,
    certificate,
    client_of,
    everything_shown,
    serve_each,
    trusted,
)


def trickling_tls_service(folder: Path) -> socket.socket:
    """Reads a request whole over TLS, then answers a header byte every 0.2 s: never done."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")

    def handle(raw: socket.socket) -> None:
        try:
            connection = context.wrap_socket(raw, server_side=True)
            if read_request(connection) is None:
                return
            connection.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(100):
                connection.sendall(b"a")
                time.sleep(0.2)
        except (OSError, ssl.SSLError):
            pass
        finally:
            raw.close()

    return serve_each(socket.create_server(("127.0.0.1", 0)), handle)


def tls_tunnelling_proxy(folder: Path) -> socket.socket:
    """An HTTPS proxy spoken to over TLS itself (HTTPS_PROXY=https://...): CONNECT opens a tunnel,
    so a request to an https:// service is TLS inside TLS."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")

    def pipe(source, sink) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except (OSError, ssl.SSLError):
            pass
        finally:
            for end in (source, sink):
                try:
                    end.close()
                except (OSError, ssl.SSLError):
                    pass

    def handle(raw: socket.socket) -> None:
        try:
            connection = context.wrap_socket(raw, server_side=True)
            head = b""
            while b"\r\n\r\n" not in head:
                head += connection.recv(4096)
            host, port = head.split()[1].decode().rsplit(":", 1)
            upstream = socket.create_connection((host, int(port)))
            connection.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        except (OSError, ssl.SSLError):
            raw.close()
            return
        threading.Thread(target=pipe, args=(connection, upstream), daemon=True).start()
        pipe(upstream, connection)

    return serve_each(socket.create_server(("127.0.0.1", 0)), handle)


def clear_proxies(monkeypatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def timed(call) -> tuple[float, BaseException | None]:
    started = time.monotonic()
    try:
        call()
    except Exception as error:  # noqa: BLE001
        return time.monotonic() - started, error
    return time.monotonic() - started, None


def test_a_tls_in_tls_proxy_keeps_every_deadline_of_the_process(trusted, monkeypatch):  # noqa: F811
    """Through an HTTPS proxy spoken to over TLS, urllib3's connection holds an SSLTransport (no
    `shutdown`): its cut must neither fail nor kill the one watchman, or no later call of the
    process (through any route) is ever given up at its deadline again."""
    clear_proxies(monkeypatch)
    service, proxy = trickling_tls_service(trusted), tls_tunnelling_proxy(trusted)
    monkeypatch.setenv("HTTPS_PROXY", f"https://127.0.0.1:{proxy.getsockname()[1]}")
    try:
        took, error = timed(
            lambda: client_of(
                f"https://127.0.0.1:{service.getsockname()[1]}/svc", timeout=1, call_budget=1
            ).send_batch_sms(LINE, [NUMBER], "hi")
        )
        assert isinstance(error, errors.SendOutcomeUnknownError), repr(error)
        assert took < 2.5, f"the send through the TLS proxy took {took:.1f} s with a 1 s deadline"
    finally:
        service.close()
        proxy.close()
    clear_proxies(monkeypatch)
    with HostileServer({"/svc": trickle}) as server:  # another call, no proxy: its headers trickle
        took, error = timed(lambda: client_of(server.url("svc"), timeout=1, call_budget=1).get_credit())
    assert isinstance(error, errors.TransportError), repr(error)
    assert took < 2.5, f"a later call took {took:.1f} s with a 1 s deadline: the watchman is gone"


def test_a_cut_leaves_a_tls_socket_speaking_tls(certificate):  # noqa: F811
    """The cut must not turn a TLS socket into a plain one: SSLSocket.shutdown drops the TLS state
    (version() is None after it) before shutting the socket, so a write of the request racing the
    cut in the caller's thread would go out in clear, password and all."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(certificate / "cert.pem", certificate / "key.pem")
    client_context = ssl.create_default_context(cafile=str(certificate / "cert.pem"))
    server_side, client_side = socket.socketpair()
    threading.Thread(
        target=lambda: server_context.wrap_socket(server_side, server_side=True).recv(10), daemon=True
    ).start()

    class Connection:
        sock = client_context.wrap_socket(client_side, server_hostname="127.0.0.1")

    attempt = wire.Attempt(wire.Deadline(5))
    attempt.watch(Connection, writing=True)
    assert Connection.sock.version() is not None
    attempt.abandon()
    assert Connection.sock.version() is not None, "the cut dropped TLS: a racing write would go out in clear"


def trickle_call(url: str, timeout: float) -> float:
    took, error = timed(lambda: client_of(url, timeout=timeout, call_budget=timeout).get_credit())
    assert isinstance(error, errors.TransportError), repr(error)
    return took


def test_sixteen_threads_each_end_at_their_deadline():
    with HostileServer({"/svc": trickle}) as server:
        took: list[float] = []
        threads = [threading.Thread(target=lambda: took.append(trickle_call(server.url("svc"), 1))) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    assert len(took) == 16 and max(took) < 2.5, took


def test_a_deadline_sooner_than_the_one_the_watchman_sleeps_for():
    with HostileServer({"/svc": trickle}) as server:
        long = threading.Thread(target=trickle_call, args=(server.url("svc"), 6), daemon=True)
        long.start()
        time.sleep(0.5)  # the watchman now sleeps until the 6 s deadline
        assert trickle_call(server.url("svc"), 0.5) < 1.5


def _child_call(url: str, out) -> None:
    out.put(trickle_call(url, 1))


def test_a_forked_child_has_a_watchman_of_its_own():
    with HostileServer({"/svc": trickle}) as server:
        trickle_call(server.url("svc"), 0.5)  # the parent's watchman runs
        context = multiprocessing.get_context("fork")
        out = context.Queue()
        child = context.Process(target=_child_call, args=(server.url("svc"), out))
        child.start()
        took = out.get(timeout=20)
        child.join(5)
    assert took < 2.5


def test_a_late_cut_never_reaches_the_next_request_on_a_reused_connection():
    """Fast answers and answers slower than the deadline, on kept-alive connections, from four
    threads: no call is cut before its own deadline. An earlier attempt's deadline, cutting the
    connection after it went on to the next request, always comes before that request's own
    deadline; a fast call that a loaded machine keeps past its own fails after it."""

    def behaviour(request, connection):
        if request.operation == "GetInboxCount":
            time.sleep(0.35)
        result = f"<{request.operation}Result>5</{request.operation}Result>"
        connection.sendall(http("200 OK", soap(request.operation, result)))

    failures: list = []
    with HostileServer({"/svc": behaviour}) as server:
        client = client_of(server.url("svc"), timeout=0.3, call_budget=0.3, read_attempts=1)

        def work() -> None:
            for index in range(40):
                started = time.monotonic()  # before the call: its deadline starts after this
                try:
                    (client.get_inbox_count if index % 3 == 0 else client.get_credit)()
                except errors.TransportError as error:
                    if time.monotonic() - started < 0.3:  # cut before its own deadline: a late cut
                        failures.append(error)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert failures == []


def test_the_watchman_forgets_finished_attempts_behind_a_slow_one():
    """One call hung until its (long) deadline sits at the top of the watchman's heap; every call
    finished after it must not stay there with it (each holds its attempt, lock and connection)."""
    fast = by_operation({"GetCredit": soap("GetCredit", "<GetCreditResult>5</GetCreditResult>")})
    with HostileServer({"/svc": fast, "/slow": trickle}) as server:
        slow = threading.Thread(target=trickle_call, args=(server.url("slow"), 8), daemon=True)
        slow.start()
        time.sleep(0.3)
        client = client_of(server.url("svc"), timeout=30)
        for _ in range(1000):
            client.get_credit()
        held = len(wire.WATCHMAN._due)
    assert held < 200, f"{held} attempts held by the watchman after 1000 finished calls"


def test_a_proxy_that_trickles_its_answer_to_connect_is_given_up_in_time(trusted, monkeypatch):  # noqa: F811
    """HTTPS_PROXY whose answer to CONNECT comes a byte every 0.2 s: the tunnel is never open, the
    call ends at its deadline, and a send is not sent."""
    clear_proxies(monkeypatch)

    def handle(connection: socket.socket) -> None:
        try:
            while b"\r\n\r\n" not in connection.recv(4096):
                pass
            for byte in b"HTTP/1.1 200 Connection established\r\nX-Slow: " + b"a" * 200:
                connection.sendall(bytes([byte]))
                time.sleep(0.2)
        except OSError:
            pass

    proxy = serve_each(socket.create_server(("127.0.0.1", 0)), handle)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.getsockname()[1]}")
    try:
        took, error = timed(
            lambda: client_of("https://127.0.0.1:9/svc", timeout=1, call_budget=1).send_batch_sms(LINE, [NUMBER], "hi")
        )
    finally:
        proxy.close()
    assert isinstance(error, errors.NotSentError), repr(error)
    assert took < 2.0


def test_ctrl_c_during_a_send_holds_no_envelope_in_its_frames():
    """Ctrl-C while a send waits for its answer: the KeyboardInterrupt raised to the caller (kept by
    a notebook as sys.last_traceback, printed with locals by a verbose traceback) must not carry
    the envelope, password and all, in the locals of the frames it passed through."""
    main = threading.main_thread().ident

    def interrupt_then_answer(request, connection):
        time.sleep(0.2)
        signal.pthread_kill(main, signal.SIGINT)
        time.sleep(0.5)

    # Python's own Ctrl-C handler, whatever this process inherited (a shell's background job ignores SIGINT)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with HostileServer({"/svc": interrupt_then_answer}) as server:
            client = client_of(server.url("svc"), timeout=3)
            with pytest.raises(KeyboardInterrupt) as caught:
                client.send_batch_sms(LINE, [NUMBER], "hi")
    finally:
        signal.signal(signal.SIGINT, inherited)
    error = caught.value
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:  # this test's own frames left out
        tb = tb.tb_next
    assert_no_secret(everything_shown(error.with_traceback(tb)))


def test_a_ca_bundle_that_never_finishes_loading_is_within_the_deadline(certificate, monkeypatch, tmp_path):  # noqa: F811
    """REQUESTS_CA_BUNDLE on a file that blocks when read (a FIFO here; a hung network share in
    life): no cut socket ends that read, yet the call must end at its deadline, as "not sent"."""
    bundle = tmp_path / "bundle.pem"
    os.mkfifo(bundle)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    service = TLSService(certificate, "ok")
    outcome: list = []
    caller = threading.Thread(
        target=lambda: outcome.append(
            timed(lambda: client_of(service.url, timeout=1, call_budget=1).send_batch_sms(LINE, [NUMBER], "hi"))
        ),
        daemon=True,
    )
    caller.start()
    caller.join(3)
    hung = caller.is_alive()
    try:  # let the blocked reader go: give it the real certificate
        fd = os.open(bundle, os.O_WRONLY | os.O_NONBLOCK)
        os.write(fd, (certificate / "cert.pem").read_bytes())
        os.close(fd)
    except OSError:
        pass
    caller.join(5)
    service.close()
    assert not hung, "the call was still running 2 s past its 1 s deadline (blocked loading the CA bundle)"
    _, error = outcome[0]
    assert isinstance(error, errors.NotSentError), repr(error)

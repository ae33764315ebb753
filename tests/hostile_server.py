"""A hostile SOAP server on loopback: each path answers the client with one misbehaviour.

A behaviour is a function (request, connection) that writes raw bytes to the socket, so that
it can do what no well-behaved framework would: trickle a byte a second, promise more than it
sends, redirect, send a gzip bomb. Every request is recorded (path, headers, body), so a test
can tell whether anything reached an address it should not have.
"""

from __future__ import annotations

import re
import socket
import socketserver
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

import requests

from payamak_analytics import PanelClient

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
DISPATCHER = "http://schemas.microsoft.com/net/2005/12/windowscommunicationfoundation/dispatcher"
ARRAYS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def operation(self) -> str:
        return self.headers.get("soapaction", "").strip('"').rsplit("/", 1)[-1]


def soap(operation: str, inner: str) -> bytes:
    """A SOAP answer to `operation` with `inner` inside its response element."""
    return (
        f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><{operation}Response xmlns="http://tempuri.org/">'
        f"{inner}</{operation}Response></s:Body></s:Envelope>"
    ).encode()


def wcf_fault(code: str) -> bytes:
    """A fault as WCF writes it; `code` is `a:Name` (dispatcher namespace) or `s:Name`."""
    declaration = f' xmlns:a="{DISPATCHER}"' if code.startswith("a:") else ""
    return (
        f'<s:Envelope xmlns:s="{SOAP_ENV}"><s:Body><s:Fault><faultcode{declaration}>{code}</faultcode>'
        '<faultstring xml:lang="en-US">The server was unable to process the request.</faultstring>'
        "</s:Fault></s:Body></s:Envelope>"
    ).encode()


def http(status: str, body: bytes, *headers: tuple[str, str], content_type: str = "text/xml; charset=utf-8") -> bytes:
    lines = [
        f"HTTP/1.1 {status}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        *(f"{k}: {v}" for k, v in headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def answer(status: str, body: bytes, *headers, **kwargs) -> Callable:
    """A behaviour that answers the same bytes to every request."""
    return lambda request, connection: connection.sendall(http(status, body, *headers, **kwargs))


def by_operation(answers: dict[str, bytes]) -> Callable:
    """A behaviour answering 200 with the body given for the request's operation."""
    return lambda request, connection: connection.sendall(http("200 OK", answers[request.operation]))


def trickle(request: Request, connection: socket.socket) -> None:
    """Headers and body one byte a second, for as long as the client listens."""
    data = http("200 OK", soap("GetCredit", "<GetCreditResult>" + "1" * 500 + "</GetCreditResult>"))
    for byte in data:
        connection.sendall(bytes([byte]))
        time.sleep(1.0)


def endless(request: Request, connection: socket.socket, declared: bool = True) -> None:
    """A 200 MB answer, written as fast as the client reads it; its length announced or not."""
    length = b"Content-Length: 209715200\r\n" if declared else b"Connection: close\r\n"
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n" + length + b"\r\n")
    block = b"<a>" + b"x" * 65530 + b"</a>"
    for _ in range(209715200 // len(block)):
        connection.sendall(block)


def _gzip_of_zeros(megabytes: int) -> bytes:
    """A gzip stream of `megabytes` MB of zeros, built a megabyte at a time."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = bytes(1024 * 1024)
    return b"".join(compressor.compress(block) for _ in range(megabytes)) + compressor.flush()


def unannounced(request: Request, connection: socket.socket) -> None:
    """A 200 MB answer whose length is not announced: it ends when the connection closes."""
    endless(request, connection, declared=False)


GZIP_BOMB = _gzip_of_zeros(300)


def bomb(request: Request, connection: socket.socket) -> None:
    """A small gzip answer that expands to 300 MB."""
    connection.sendall(http("200 OK", GZIP_BOMB, ("Content-Encoding", "gzip")))


def cut_off(body: bytes) -> Callable:
    """Promises `body` whole, sends half of it and closes."""

    def behaviour(request: Request, connection: socket.socket) -> None:
        data = http("200 OK", body)
        connection.sendall(data[: len(data) - len(body) // 2])

    return behaviour


@dataclass
class HostileServer:
    """`behaviours` maps a path (`/name`) to what the server does there."""

    behaviours: dict[str, Callable] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                while True:
                    try:
                        request = read_request(self.request)
                    except OSError:  # the client let go of the connection (a reset, a timeout)
                        return
                    if request is None:
                        return
                    server.requests.append(request)
                    behaviour = server.behaviours.get(request.path.split("?")[0])
                    try:
                        if behaviour is None:
                            self.request.sendall(http("404 Not Found", b"no such path"))
                        else:
                            behaviour(request, self.request)
                    except OSError:
                        return

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def read_request(connection: socket.socket) -> Request | None:
    """One HTTP request (headers and a Content-Length body), or None when the client closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    first, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        body += chunk
    return Request(first.split(" ")[1], headers, body)


def forwarding(simulator, rewrite: Callable[[str, bytes], bytes]) -> Callable:
    """A proxy in front of the simulator that passes every call on and `rewrite(operation, body)`s
    each answer on its way back."""

    def behaviour(request: Request, connection) -> None:
        headers = {"Content-Type": request.headers["content-type"], "SOAPAction": request.headers["soapaction"]}
        answer = requests.post(simulator.url, data=request.body, headers=headers, timeout=30)
        body = rewrite(request.operation, answer.content)
        connection.sendall(http(f"{answer.status_code} {answer.reason}", body))

    return behaviour


def index_rewritten(simulator, asked: Callable[[str, int], int]) -> Callable:
    """A proxy in front of the simulator that asks each paged call for the index
    `asked(operation, index)` instead of the one it was given."""

    def behaviour(request: Request, connection) -> None:
        def rewrite(match: re.Match) -> bytes:
            return b"%s%d%s" % (match[1], asked(request.operation, int(match[2])), match[3])

        body = re.sub(rb"(<[\w:]*index>)(\d+)(</)", rewrite, request.body)
        headers = {"Content-Type": request.headers["content-type"], "SOAPAction": request.headers["soapaction"]}
        answer = requests.post(simulator.url, data=body, headers=headers, timeout=30)
        connection.sendall(http(f"{answer.status_code} {answer.reason}", answer.content))

    return behaviour


def first_page_always(simulator) -> Callable:
    """A service that ignores the index: every paged call gets its first page."""
    return index_rewritten(simulator, lambda operation, index: 1)


def listed_count(operation: str, body: bytes, batch: int, count: int) -> bytes:
    """A GetMessages answer whose record of `batch` lists `count` recipients (other answers as they are)."""
    if operation != "GetMessages":
        return body
    record = rb"(<a:Count>)\d+(</a:Count>(?:(?!</a:MessageInfo>).)*<a:MessageId>%d</a:MessageId>)" % batch
    return re.sub(record, rb"\g<1>%d\g<2>" % count, body, flags=re.DOTALL)


def endless_report(simulator, batch: int) -> Callable:
    """A proxy in front of the simulator whose report of `batch`, listed with 120 recipients, goes
    on past row 200 with full pages of numbers made up anew at every index."""

    def behaviour(request: Request, connection) -> None:
        body, index = request.body, 0
        if request.operation == "GetBatchDelivery" and re.search(rb"batchSmsId>%d<" % batch, body):
            index = int(re.search(rb"index>(\d+)<", body).group(1))
            body = re.sub(rb"index>\d+<", b"index>101<", body) if index > 200 else body
        headers = {"Content-Type": request.headers["content-type"], "SOAPAction": request.headers["soapaction"]}
        answer = requests.post(simulator.url, data=body, headers=headers, timeout=30).content
        answer = listed_count(request.operation, answer, batch, 120)
        if index > 200:
            answer = answer.replace(b">0912000", b">099%04d" % (index // 100))
        connection.sendall(http("200 OK", answer))

    return behaviour


def report_pages_asked(proxy: HostileServer, batch: int) -> set[int]:
    """The indexes of `batch`'s report the proxy was asked for."""
    return {
        int(re.search(rb"index>(\d+)<", request.body).group(1))
        for request in proxy.requests
        if request.operation == "GetBatchDelivery" and re.search(rb"batchSmsId>%d<" % batch, request.body)
    }


def proxied(proxy: HostileServer) -> PanelClient:
    """The demo account's client through `proxy` (its path "svc"), quick to retry."""
    return PanelClient("demo", "demo", wsdl="bundled", endpoint=proxy.url("svc"), max_retry_wait=0.05)


def delivered_taken_back(switch: dict[str, bool]) -> Callable[[str, bytes], bytes]:
    """A rewrite for `forwarding`: while `switch["on"]`, report answers say "sent to the telecom"
    (0) where the service said delivered (1), as a service taking a final status back would."""

    def rewrite(operation: str, body: bytes) -> bytes:
        if operation == "GetBatchDelivery" and switch["on"]:
            return body.replace(b"<a:int>1</a:int>", b"<a:int>0</a:int>")
        return body

    return rewrite

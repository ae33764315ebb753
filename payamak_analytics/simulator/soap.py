"""The SOAP 1.1 endpoint: a WSGI app that serves the contract's documents and answers requests
as the real service, a WCF basicHttpBinding service with exception details off, does.

How a request is read and refused is in `wcf.py`; this module routes, calls the world and
writes the answers. Requests are parsed with entities, DTDs and the network off; whatever goes
wrong inside, the caller gets WCF's fault, never a stack trace.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from decimal import Decimal
from urllib.parse import parse_qs, parse_qsl
from xml.sax.saxutils import escape

from .. import wsdl
from ..wsdl.contract import ARRAY_ITEMS, DELIVERY_STATUS_FIELDS, MESSAGE_INFO, MODELS, Contract
from .wcf import (
    XSI,
    Fault,
    HttpRefusal,
    check_headers,
    dispatch,
    fault_body,
    internal_fault,
    read_body,
    read_envelope,
)
from .world import World

log = logging.getLogger(__name__)

__all__ = ["MAX_BODY_BYTES", "SERVICE_PATH", "XML_HEADERS", "SoapApp", "answer", "fault_body"]

ARRAYS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
SERVICE_PATH = "/SendService.svc"
MAX_BODY_BYTES = 1_000_000
XML_HEADERS = [("Content-Type", "text/xml; charset=utf-8")]
NOT_FOUND = (
    b'<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Strict//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd">'
    b'<html xmlns="http://www.w3.org/1999/xhtml"><head><meta http-equiv="Content-Type" content="text/html; '
    b'charset=iso-8859-1"/><title>404 - File or directory not found.</title></head><body><div id="header">'
    b'<h1>Server Error</h1></div><div id="content"><fieldset><h2>404 - File or directory not found.</h2>'
    b"<h3>The resource you are looking for might have been removed, had its name changed, or is temporarily "
    b"unavailable.</h3></fieldset></div></body></html>"
)
MESSAGE_INFO_FIELDS = tuple(name for name, _ in MESSAGE_INFO)  # the order of the world's rows
NIL = f'i:nil="true" xmlns:i="{XSI}"'


# --- writing responses ------------------------------------------------------------------------
def _array(name: str, namespace: str, items: str) -> str:
    opening = f'<{name} xmlns:a="{namespace}" xmlns:i="{XSI}"'
    return f"{opening}>{items}</{name}>" if items else f"{opening}/>"


class _Writer:
    """Writes values of one contract generation as the DataContractSerializer does: prefixes
    declared on the element that needs them, and never an enum value the generation lacks."""

    def __init__(self, contract: Contract):
        self.contract = contract
        # For each served MessageInfo member: its place in the world's rows and, for an enum, its names.
        self.members = [
            (MESSAGE_INFO_FIELDS.index(f.name), f.name, frozenset(v for v, _ in contract.enums.get(f.type, ())))
            for f in contract.message_info
        ]

    def message_info(self, row: tuple) -> str:
        cells = []
        for place, name, names in self.members:
            value = row[place]
            if value is None:
                cells.append(f'<a:{name} i:nil="true"/>')
                continue
            if names and value not in names:
                value = "None"  # a value of a newer generation: the served one cannot hold it
            cells.append(f"<a:{name}>{escape(str(value))}</a:{name}>")
        return "<a:MessageInfo>" + "".join(cells) + "</a:MessageInfo>"

    def value(self, name: str, xsd_type: str, value) -> str:
        if value is None:
            return f"<{name} {NIL}/>"
        if xsd_type == "ArrayOfMessageInfo":
            return _array(name, MODELS, "".join(map(self.message_info, value)))
        if xsd_type in ARRAY_ITEMS:
            item = ARRAY_ITEMS[xsd_type]
            items = "".join(
                f'<a:{item} i:nil="true"/>' if v is None else f"<a:{item}>{escape(str(v))}</a:{item}>" for v in value
            )
            return _array(name, ARRAYS, items)
        if xsd_type == "decimal":
            return f"<{name}>{Decimal(value):f}</{name}>"  # never an exponent, as XmlConvert writes it
        if xsd_type == "boolean":
            return f"<{name}>{'true' if value else 'false'}</{name}>"
        if xsd_type == "base64Binary":
            return f"<{name}>{base64.b64encode(value).decode()}</{name}>"
        return f"<{name}>{escape(str(value))}</{name}>"

    def _reported(self, name: str, value):
        """Delivery statuses as the served generation reports them."""
        if name not in DELIVERY_STATUS_FIELDS or value is None:
            return value
        if isinstance(value, list):
            return [self.contract.reported_status(v) for v in value]
        return self.contract.reported_status(value)

    def response(self, operation: wsdl.Operation, values: tuple) -> bytes:
        inner = "".join(
            self.value(f.name, f.type, self._reported(f.name, v)) for f, v in zip(operation.response, values)
        )
        return (
            f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
            f'<{operation.name}Response xmlns="{wsdl.TEMPURI}">{inner}</{operation.name}Response>'
            "</s:Body></s:Envelope>"
        ).encode()


# --- the operations ---------------------------------------------------------------------------
def _credentials(a: dict) -> tuple:
    return a.get("userName"), a.get("password")


HANDLERS: dict[str, Callable[[World, dict], tuple]] = {
    "SendSMS": lambda w, a: w.send_sms(
        *_credentials(a), a["fromNumber"], a["toNumbers"], a["messageContent"], a["isFlash"]
    ),
    "GetCredit": lambda w, a: (w.get_credit(*_credentials(a)),),
    "GetDeilvery": lambda w, a: (w.get_delivery(*_credentials(a), a["recId"]),),
    "GetDelivery": lambda w, a: (w.get_delivery(*_credentials(a), a["recId"]),),
    "GetMessages": lambda w, a: (
        w.get_messages(*_credentials(a), a["messageType"], a["fromNumbers"], a["index"], a["count"]),
    ),
    "GetMessagesByDateRange": lambda w, a: (
        w.get_messages_by_date_range(*_credentials(a), a["messageType"], a["fromNumbers"], a["fromDate"], a["toDate"]),
    ),
    "GetInboxCount": lambda w, a: (w.get_inbox_count(*_credentials(a), a["isRead"]),),
    "SendBatchSms": lambda w, a: w.send_batch_sms(
        *_credentials(a), a["fromNumber"], a["toNumbers"], a["messageContent"], a["isFlash"]
    ),
    "GetBatchDelivery": lambda w, a: w.get_batch_delivery(*_credentials(a), a["batchSmsId"], a["index"], a["count"]),
    "GetSenderNumbers": lambda w, a: (w.get_sender_numbers(*_credentials(a)),),
    "SendSmsLikeToLike": lambda w, a: w.send_like_to_like(
        *_credentials(a), a["fromNumber"], a["toNumbers"], a["messageContents"], a["isFlash"]
    ),
    "GetDeliveryLikeToLike": lambda w, a: w.get_delivery_like_to_like(*_credentials(a), a["smsId"]),
    "ExtractTelecomBlacklistNumbers": lambda w, a: w.extract_blacklist(*_credentials(a), a["numbers"]),
    "NumberIsInTelecomBlacklist": lambda w, a: (w.number_in_blacklist(*_credentials(a), a["number"]),),
    "CheckSmsContent": lambda w, a: (w.check_sms_content(*_credentials(a), a["message"]),),
    "Dummy": lambda w, a: (a["number"],),
}


class SoapApp:
    """The WSGI application: the endpoint's documents on GET, SOAP on POST, nothing on any other
    path (404) and, with admin, `/_sim/...`. `contract` picks the generation served."""

    def __init__(self, world: World, *, admin: bool = False, contract: str = wsdl.DEFAULT_GENERATION):
        self.world = world
        self.admin = admin
        self.contract = wsdl.contract(contract)
        self.writer = _Writer(self.contract)

    def __call__(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if path.startswith("/_sim/"):
            return self._admin(method, path, query, start_response)
        if path.lower() != SERVICE_PATH.lower():
            return _answer(start_response, "404 Not Found", "text/html", NOT_FOUND)
        if method in ("GET", "HEAD"):
            return self._document(environ, start_response)
        if method != "POST":
            start_response("405 Method Not Allowed", [("Allow", "GET, POST"), ("Content-Length", "0")])
            return [b""]
        status, body = self.handle_soap(environ)
        return answer(start_response, status, body)

    def handle_soap(self, environ, throws: str | None = None) -> tuple[str, bytes]:
        """The status line and body answering one SOAP POST. `throws` ("before" or "after") makes
        the operation throw before or after it did its work, once WCF has read and dispatched the
        request: a request refused earlier gets its refusal, as it would from WCF."""
        try:
            return "200 OK", self._call(environ, throws)
        except HttpRefusal as refusal:
            return refusal.status, b""
        except Fault as fault:
            return "500 Internal Server Error", fault.body()
        except Exception:  # an answer, never a traceback, whatever went wrong inside
            log.exception("simulator failed on a request")
            return "500 Internal Server Error", internal_fault().body()

    def _call(self, environ, throws: str | None = None) -> bytes:
        envelope = read_envelope(_read_body(environ), environ.get("CONTENT_TYPE"))
        operation = dispatch(self.contract, environ.get("HTTP_SOAPACTION"))
        arguments = read_body(envelope, operation)
        check_headers(envelope.headers)
        if throws == "before":
            raise internal_fault()
        values = HANDLERS[operation.name](self.world, arguments)
        with self.world.lock:
            self.world.calls[operation.name] += 1
        if throws == "after":
            raise internal_fault()
        return self.writer.response(operation, values)

    def _document(self, environ, start_response):
        """`?wsdl`, `?singleWsdl` and `?xsd=xsdN` in any letter case, else the help page."""
        address = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', 'localhost')}{SERVICE_PATH}"
        pairs = parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        key, value = (pairs[0][0].lower(), pairs[0][1].lower()) if pairs else ("", "")
        if key in ("wsdl", "singlewsdl") and not value:
            name = "wsdl" if key == "wsdl" else "singleWsdl"
        elif key == "xsd" and value in wsdl.SCHEMA_NAMES:
            name = value
        elif key in ("wsdl", "xsd", "singlewsdl"):
            return _answer(start_response, "404 Not Found", "text/html", NOT_FOUND)
        else:
            return _answer(start_response, "200 OK", "text/html; charset=UTF-8", wsdl.help_page(address))
        body = wsdl.served(name, address, self.contract.generation)
        start_response("200 OK", XML_HEADERS + [("Content-Length", str(len(body)))])
        return [body]

    def _admin(self, method, path, query, start_response):
        from .admin import answer

        if not self.admin:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"admin endpoints are off; start the simulator with --admin"]
        status, headers, body = answer(self.world, method, path, query)
        start_response(status, headers)
        return [body]


def _answer(start_response, status: str, content_type: str | None, body: bytes):
    headers = [("Content-Type", content_type)] if content_type else []
    start_response(status, headers + [("Content-Length", str(len(body)))])
    return [body]


def answer(start_response, status: str, body: bytes, cut: bool = False):
    """Send a SOAP POST's answer: XML when there is a body, nothing but the status when refused;
    `cut` sends half of the promised bytes, as a connection that closes in the middle does."""
    _answer(start_response, status, "text/xml; charset=utf-8" if body else None, body)
    return [body[: len(body) // 2]] if cut else [body]


def _read_body(environ) -> bytes:
    """The request's bytes; over the size WCF is configured to receive, 413 as WCF answers."""
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise HttpRefusal("400 Bad Request") from None
    if length > MAX_BODY_BYTES:
        raise HttpRefusal("413 Request Entity Too Large")
    body = environ["wsgi.input"].read(length or MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise HttpRefusal("413 Request Entity Too Large")
    return body

"""The SOAP 1.1 endpoint: a WSGI app that reads requests by the contract and answers like WCF.

Requests are parsed with entities, DTDs and the network off; anything malformed, hostile or
unknown gets a SOAP Fault with a plain faultstring, never a stack trace.
"""

from __future__ import annotations

import base64
import logging
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Callable
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from lxml import etree

from .. import wsdl
from .world import World

log = logging.getLogger(__name__)

ENVELOPE = "http://schemas.xmlsoap.org/soap/envelope/"
ARRAYS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
MODELS = "http://schemas.datacontract.org/2004/07/SMSPanel.Domain.Models"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SERVICE_PATH = "/SendService.svc"
MAX_BODY_BYTES = 1_000_000
XML_HEADERS = [("Content-Type", "text/xml; charset=utf-8")]

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, dtd_validation=False)

MESSAGE_INFO_FIELDS = (
    "ActionDateTime",
    "Content",
    "Cost",
    "Count",
    "Desc",
    "Flash",
    "IsRead",
    "Lang",
    "MessageId",
    "MessageType",
    "MoneyIsRefunded",
    "NotSent",
    "Pages",
    "Receiver",
    "SendMethod",
    "SendStatus",
    "Sender",
    "Sent",
    "Status",
    "Tariff",
    "Title",
    "UserId",
)
NILLABLE = {"Content", "Desc", "Receiver", "Sender", "Title"}


class RequestFault(Exception):
    """The request cannot be served; the text is the faultstring the caller sees."""

    def __init__(self, text: str, code: str = "s:Client"):
        super().__init__(text)
        self.code = code


def fault_body(text: str, code: str = "s:Client") -> bytes:
    return (
        f'<s:Envelope xmlns:s="{ENVELOPE}"><s:Body><s:Fault><faultcode>{code}</faultcode>'
        f'<faultstring xml:lang="en-US">{escape(text)}</faultstring></s:Fault></s:Body></s:Envelope>'
    ).encode()


# --- reading requests -------------------------------------------------------------------------
INT_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def _scalar(text: str, xsd_type: str, name: str):
    try:
        if xsd_type in INT_RANGES:
            value = int(text.strip())
            low, high = INT_RANGES[xsd_type]
            if not low <= value <= high:
                raise ValueError("out of range")
            return value
        if xsd_type == "boolean":
            return {"true": True, "1": True, "false": False, "0": False}[text.strip()]
        if xsd_type == "decimal":
            return Decimal(text.strip())
        if xsd_type == "dateTime":
            return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        if xsd_type == "base64Binary":
            return base64.b64decode(text.strip(), validate=True)
        return text
    except (ValueError, KeyError, InvalidOperation, TypeError) as error:
        raise RequestFault(f"The value '{text[:40]}' of parameter '{name}' is not a valid {xsd_type}.") from error


def _argument(element: etree._Element | None, field: wsdl.Field):
    if element is None or element.get(f"{{{XSI}}}nil") == "true":
        return [] if field.type.startswith("ArrayOf") else (0 if field.type in INT_RANGES else None)
    if field.type.startswith("ArrayOf"):
        item_type = field.type[len("ArrayOf") :]
        return [_scalar(item.text or "", item_type, field.name) for item in element if isinstance(item.tag, str)]
    return _scalar(element.text or "", field.type, field.name)


def parse_request(body: bytes, soap_action: str | None) -> tuple[wsdl.Operation, dict]:
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise RequestFault("DTD is prohibited in this XML document.")
    try:
        root = etree.fromstring(body, PARSER)
    except etree.XMLSyntaxError as error:
        raise RequestFault(f"The request is not well-formed XML: {error.msg}") from None
    body_element = root.find(f"{{{ENVELOPE}}}Body") if root.tag == f"{{{ENVELOPE}}}Envelope" else None
    if body_element is None:
        raise RequestFault("The request is not a SOAP 1.1 envelope with a Body.")
    call = next((child for child in body_element if isinstance(child.tag, str)), None)
    if call is None:
        raise RequestFault("The SOAP Body is empty: name an operation.")
    qname = etree.QName(call)
    operation = wsdl.operations().get(qname.localname) if qname.namespace == wsdl.TEMPURI else None
    if operation is None:
        raise RequestFault(
            f"The operation '{qname.localname}' in namespace '{qname.namespace}' is not part of "
            "this service; see ?wsdl for the ones it has."
        )
    action = (soap_action or "").strip('"')
    if action and action != operation.soap_action:
        raise RequestFault(f"The SOAPAction '{action}' does not match the body element '{operation.name}'.")
    children = {etree.QName(c).localname: c for c in call if isinstance(c.tag, str)}
    return operation, {f.name: _argument(children.get(f.name), f) for f in operation.request}


# --- writing responses ------------------------------------------------------------------------
def _message_info(row: tuple) -> str:
    cells = []
    for name, value in zip(MESSAGE_INFO_FIELDS, row):
        if value is None:
            cells.append(f'<a:{name} i:nil="true"/>')
        else:
            cells.append(f"<a:{name}>{escape(value) if name in NILLABLE else value}</a:{name}>")
    return "<a:MessageInfo>" + "".join(cells) + "</a:MessageInfo>"


def _value(name: str, xsd_type: str, value) -> str:
    if value is None:
        return f'<{name} i:nil="true"/>'
    if xsd_type == "ArrayOfMessageInfo":
        return f'<{name} xmlns:a="{MODELS}">' + "".join(map(_message_info, value)) + f"</{name}>"
    if xsd_type.startswith("ArrayOf"):
        item = xsd_type[len("ArrayOf") :]
        items = "".join(f"<a:{item}>{escape(str(v))}</a:{item}>" for v in value)
        return f'<{name} xmlns:a="{ARRAYS}">{items}</{name}>'
    if xsd_type == "boolean":
        return f"<{name}>{'true' if value else 'false'}</{name}>"
    if xsd_type == "base64Binary":
        return f"<{name}>{base64.b64encode(value).decode()}</{name}>"
    return f"<{name}>{escape(str(value))}</{name}>"


def response_body(operation: wsdl.Operation, values: tuple) -> bytes:
    inner = "".join(_value(f.name, f.type, v) for f, v in zip(operation.response, values))
    return (
        f'<s:Envelope xmlns:s="{ENVELOPE}"><s:Body><{operation.name}Response xmlns="{wsdl.TEMPURI}" '
        f'xmlns:i="{XSI}">{inner}</{operation.name}Response></s:Body></s:Envelope>'
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
        w.get_messages_by_date_range(
            *_credentials(a), a["messageType"], a["fromNumbers"], _required(a, "fromDate"), _required(a, "toDate")
        ),
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


def _required(arguments: dict, name: str):
    if arguments[name] is None:
        raise RequestFault(f"The parameter '{name}' is required.")
    return arguments[name]


class SoapApp:
    """The WSGI application: `?wsdl`, `?xsd=xsdN`, SOAP POSTs and, with admin, `/_sim/...`."""

    def __init__(self, world: World, *, admin: bool = False):
        self.world = world
        self.admin = admin

    def __call__(self, environ, start_response):
        method = environ["REQUEST_METHOD"]
        path = environ.get("PATH_INFO", "")
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if path.startswith("/_sim/"):
            return self._admin(method, path, query, start_response)
        if method == "GET":
            return self._document(environ, query, start_response)
        if method != "POST":
            start_response("405 Method Not Allowed", [("Allow", "GET, POST")])
            return [b""]
        status, body = self.handle_soap(environ)
        start_response(status, XML_HEADERS + [("Content-Length", str(len(body)))])
        return [body]

    def handle_soap(self, environ) -> tuple[str, bytes]:
        try:
            body = _read_body(environ)
            operation, arguments = parse_request(body, environ.get("HTTP_SOAPACTION"))
            values = HANDLERS[operation.name](self.world, arguments)
            with self.world.lock:
                self.world.calls[operation.name] += 1
            return "200 OK", response_body(operation, values)
        except RequestFault as fault:
            return "500 Internal Server Error", fault_body(str(fault), fault.code)
        except Exception:  # an answer, never a traceback, whatever went wrong inside
            log.exception("simulator failed on a request")
            return "500 Internal Server Error", fault_body("The server was unable to process the request.", "s:Server")

    def _document(self, environ, query, start_response):
        address = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', 'localhost')}{SERVICE_PATH}"
        if "wsdl" in query or "singleWsdl" in query:
            name = "wsdl"
        elif query.get("xsd", [""])[0] in wsdl.SCHEMA_NAMES:
            name = query["xsd"][0]
        else:
            body = (f"SendService simulator. WSDL: {address}?wsdl\n").encode()
            start_response(
                "200 OK", [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
            )
            return [body]
        body = wsdl.served(name, address)
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


def _read_body(environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise RequestFault("The Content-Length header is not a number.") from None
    if length > MAX_BODY_BYTES:
        raise RequestFault(f"The request is larger than the maximum of {MAX_BODY_BYTES} bytes.")
    body = environ["wsgi.input"].read(length or MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES:
        raise RequestFault(f"The request is larger than the maximum of {MAX_BODY_BYTES} bytes.")
    return body

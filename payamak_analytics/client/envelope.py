"""Reading a SOAP answer: the envelope, a WCF fault by its QName, and an operation's reply fields.

Elements are found by local name, case-insensitively, so the real service's casing or prefix
layout cannot break the reading; namespaces count only where they carry meaning (a fault code).
Entities, DTDs and the network are off.
"""

from __future__ import annotations

from lxml import etree

from ..errors import AnswerError, SoapFaultError
from .columns import wire_value
from .safety import scrub

PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
DISPATCHER = "http://schemas.microsoft.com/net/2005/12/windowscommunicationfoundation/dispatcher"
ADDRESSING_NONE = "http://schemas.microsoft.com/ws/2005/05/addressing/none"  # basicHttpBinding's ActionNotSupported

# Faults WCF's dispatcher raises before the operation runs: the request was refused whole. A
# Client (Sender) fault is what `throw new FaultException(...)` inside an operation gives, after
# it may have done its work, so it proves nothing; nor do MustUnderstand or VersionMismatch.
NEVER_RAN = frozenset(
    f"{{{ns}}}{name}"
    for ns, name in (
        (DISPATCHER, "DeserializationFailed"),
        (DISPATCHER, "ActionNotSupported"),
        (ADDRESSING_NONE, "ActionNotSupported"),
    )
)
# Faults of a service that ran into trouble: asking again may help a read.
TRANSIENT = frozenset({f"{{{DISPATCHER}}}InternalServiceFault", f"{{{SOAP_ENV}}}Server"})


def local(tag) -> str:
    return tag[tag.rfind("}") + 1 :].lower() if isinstance(tag, str) else ""


def child(element: etree._Element, name: str) -> etree._Element | None:
    name = name.lower()
    return next((c for c in element if local(c.tag) == name), None)


def parse_envelope(raw: bytes, operation: str) -> etree._Element:
    """The root of a SOAP answer, parsed safely, or AnswerError saying what was wrong."""
    try:
        root = etree.fromstring(raw, PARSER)
    except etree.XMLSyntaxError as error:
        message = scrub(error.msg)
        raise AnswerError(
            f"The answer was not complete XML (cut off, or not SOAP at all): {message}.",
            "پاسخ سرویس ناقص یا نامعتبر بود",
            operation=operation,
        ) from None
    if local(root.tag) != "envelope":  # a proxy's or a portal's page (XHTML has a DOCTYPE): it may pass
        raise AnswerError(
            f"The answer was XML but not a SOAP envelope (its root is <{local(root.tag)}>).",
            "پاسخ سرویس SOAP نبود",
            operation=operation,
        )
    if root.getroottree().docinfo.doctype:
        raise AnswerError(
            "The answer carries a DTD, which a SOAP answer never has; refused.",
            "پاسخ سرویس شامل DTD بود و پذیرفته نشد",
            operation=operation,
            retryable=False,
        )
    return root


def fault_code(fault: etree._Element) -> str:
    """The fault's code as `{namespace}name`, its prefix resolved where it is declared."""
    element = child(fault, "faultcode")
    text = (element.text or "").strip() if element is not None else ""
    prefix, _, name = text.rpartition(":")
    namespace = element.nsmap.get(prefix or None) if element is not None else None
    return f"{{{namespace}}}{name}" if namespace else name


def fault_error(fault: etree._Element, operation: str) -> SoapFaultError:
    code = scrub(fault_code(fault))
    found = child(fault, "faultstring")
    text = scrub(((found.text if found is not None else "") or "").strip()) or "no faultstring"
    return SoapFaultError(
        f"The service answered with a SOAP Fault ({code}): {text}",
        f"خطای سرویس: {text}",
        operation=operation,
        fault_code=code,
        retryable=code in TRANSIENT,
    )


def response_element(raw: bytes, operation: str) -> etree._Element:
    """The <OperationResponse> element of a SOAP answer; a SOAP Fault raises SoapFaultError."""
    root = parse_envelope(raw, operation)
    body = child(root, "body")
    first = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
    if first is None:
        raise AnswerError("The answer had no SOAP Body.", "پاسخ سرویس بدنه SOAP نداشت", operation=operation)
    if local(first.tag) == "fault":
        raise fault_error(first, operation)
    if local(first.tag) != f"{operation.lower()}response":
        raise AnswerError(
            f"The answer was <{local(first.tag)}>, not the {operation}Response asked for.",
            "پاسخ سرویس به درخواست دیگری بود",
            operation=operation,
            retryable=False,
        )
    return first


def read_reply(response: etree._Element, operation: str, shape: dict[str, str]) -> dict:
    """The reply's fields by `shape` (wire name -> kind; `kind[]` for an array, nil or empty:
    []; "messages" for a MessageInfo list, left as its element). A missing or nil scalar is
    None; the caller decides whether it may be."""
    return {name: _field(child(response, name), kind, operation, name) for name, kind in shape.items()}


def _field(element: etree._Element | None, kind: str, operation: str, name: str):
    nil = element is None or element.get(NIL) == "true"
    if kind == "messages":
        return None if nil else element
    if not kind.endswith("[]"):
        return None if nil else wire_value(kind, element.text or "", operation=operation, field=name)
    items = () if nil else [c for c in element if isinstance(c.tag, str)]
    return [
        wire_value(kind[:-2], item.text or "", operation=operation, field=f"{name}[{i}]")
        for i, item in enumerate(items)
    ]

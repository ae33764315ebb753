"""How a WCF basicHttpBinding service reads a request and words its refusals (exception details off).

The order is WCF's: the transport refuses a wrong content type (415) or an envelope it cannot
read (400); the dispatcher refuses an unknown SOAPAction (ActionNotSupported); the
DataContractSerializer reads parameters in order, skipping elements it does not expect and
faulting on values it cannot read (DeserializationFailed); then a header marked mustUnderstand
that nobody understood is refused (MustUnderstand); an error inside the operation is an
InternalServiceFault. Every text is WCF's own.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from datetime import datetime
from xml.parsers import expat
from xml.sax.saxutils import escape

from lxml import etree

from ..wsdl import TEMPURI, Contract, Field, Operation
from ..wsdl.contract import ARRAY_ITEMS, ARRAYS, ENUM_TYPES, XS, XS_PRIMITIVES, type_namespace

ENVELOPE = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
DISPATCHER = "http://schemas.microsoft.com/net/2005/12/windowscommunicationfoundation/dispatcher"
ADDRESSING_NONE = "http://schemas.microsoft.com/ws/2005/05/addressing/none"
EXPECTED_CONTENT_TYPE = "text/xml; charset=utf-8"
# The charsets WCF's text encoder takes (any letter case); "utf-16" names either byte order.
CHARSETS = {"utf-8": "utf-8", "utf-16": "utf-16", "utf-16le": "utf-16-le", "utf-16be": "utf-16-be"}
XML_SPACE = " \t\r\n"

PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, dtd_validation=False, encoding="utf-8"
)

INTERNAL_ERROR = (
    "The server was unable to process the request due to an internal error.  For more information about the "
    "error, either turn on IncludeExceptionDetailInFaults (either from ServiceBehaviorAttribute or from the "
    "<serviceDebug> configuration behavior) on the server in order to send the exception information back to "
    "the client, or turn on tracing as per the Microsoft .NET Framework SDK documentation and inspect the server "
    "trace logs."
)


class Fault(Exception):
    """A SOAP fault as WCF writes it; `code` is `a:Name` (in `namespace`) or `s:Name`."""

    def __init__(self, code: str, text: str, namespace: str | None = None):
        super().__init__(text)
        self.code, self.text, self.namespace = code, text, namespace

    def body(self) -> bytes:
        return fault_body(self.text, self.code, self.namespace)


class HttpRefusal(Exception):
    """Refused by the transport before any SOAP processing: a status line and no body."""

    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def fault_body(text: str, code: str = "s:Client", namespace: str | None = None) -> bytes:
    """A SOAP 1.1 fault; characters XML cannot carry (from a header, say) are left out of the text."""
    declaration = f' xmlns:a="{namespace}"' if namespace else ""
    text = NOT_XML.sub("", text)
    return (
        f'<s:Envelope xmlns:s="{ENVELOPE}"><s:Body><s:Fault><faultcode{declaration}>{code}</faultcode>'
        f'<faultstring xml:lang="en-US">{escape(text)}</faultstring></s:Fault></s:Body></s:Envelope>'
    ).encode()


def internal_fault() -> Fault:
    return Fault("a:InternalServiceFault", INTERNAL_ERROR, DISPATCHER)


def action_not_supported(action: str) -> Fault:
    return Fault(
        "a:ActionNotSupported",
        f"The message with Action '{action}' cannot be processed at the receiver, due to a ContractFilter mismatch "
        "at the EndpointDispatcher. This may be because of either a contract mismatch (mismatched Actions between "
        "sender and receiver) or a binding/security mismatch between the sender and the receiver.  Check that "
        "sender and receiver have the same contract and the same binding (including security requirements, e.g. "
        "Message, Transport, None).",
        ADDRESSING_NONE,
    )


def deserialization_failed(reason: str) -> Fault:
    return Fault(
        "a:DeserializationFailed",
        f"The formatter threw an exception while trying to deserialize the message: {reason}",
        DISPATCHER,
    )


def not_understood(name: str, namespace: str) -> Fault:
    return Fault(
        "s:MustUnderstand",
        f"The header '{name}' from the namespace '{namespace}' was not understood by the recipient of this message, "
        "causing the message to not be processed.  This error typically indicates that the sender of this message "
        "has enabled a communication protocol that the receiver cannot process.  Please ensure that the "
        "configuration of the client's binding is consistent with the service's binding.",
    )


# --- the transport -----------------------------------------------------------------------------
def _printable(text: str) -> str:
    return "".join(c for c in text if " " <= c <= "~")[:300]


def encoding_of(content_type: str | None) -> str | None:
    """The body's encoding named by a SOAP 1.1 content type (None: by its byte order mark).
    Anything but `text/xml` with a charset the text encoder reads is refused with 415."""
    media, *parameters = (content_type or "").split(";")
    charset = None
    for parameter in parameters:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    if media.strip().lower() != "text/xml" or (charset is not None and charset not in CHARSETS):
        raise HttpRefusal(
            f"415 Cannot process the message because the content type '{_printable(content_type or '')}' "
            f"was not the expected type '{EXPECTED_CONTENT_TYPE}'."
        )
    return CHARSETS.get(charset) if charset else None


DECLARED = re.compile(r"""\A\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']*)["']""")


def _detected(body: bytes) -> tuple[str, int]:
    """The encoding the bytes themselves show (a byte order mark, else a UTF-16 first character,
    as .NET's reader detects it; else UTF-8) and the length of the mark."""
    for mark, name in ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if body.startswith(mark):
            return name, len(mark)
    for start, name in ((b"\x00<", "utf-16-be"), (b"<\x00", "utf-16-le")):
        if body.startswith(start):
            return name, 0
    return "utf-8", 0


def _agrees(named: str, actual: str) -> bool:
    """Whether an encoding named by a charset or a declaration ("utf-16": either byte order) is `actual`."""
    return actual.startswith(named) if named == "utf-16" else named == actual


def _decode(body: bytes, encoding: str | None) -> str:
    """The body's text, in the encoding its bytes show; when the content type names a charset,
    the bytes must be in it, and a declaration must name the encoding the bytes are in: .NET's
    reader refuses a mismatch (400), it never reads past one."""
    actual, start = _detected(body)
    if encoding is not None and not _agrees(encoding, actual):
        raise HttpRefusal("400 Bad Request")
    text = body[start:].decode(actual)
    declared = DECLARED.match(text)
    if declared and not _agrees(CHARSETS.get(declared.group(1).lower(), "?"), actual):
        raise HttpRefusal("400 Bad Request")
    return text


@dataclass
class Envelope:
    """A request as the message encoder hands it on: header blocks, the Body and the bytes it was
    read from; `broken` is the reader's complaint when the Body's content is not well-formed,
    which WCF finds only when the operation's formatter reads it."""

    headers: list[etree._Element]
    body: etree._Element | None
    data: bytes
    broken: str | None = None


def read_envelope(body: bytes, content_type: str | None) -> Envelope:
    """The request's envelope; 400 for anything the encoder cannot read, a DTD in any encoding included."""
    encoding = encoding_of(content_type)
    try:
        text = _decode(body, encoding)
    except UnicodeDecodeError:
        raise HttpRefusal("400 Bad Request") from None
    if "<!doctype" in text.lower():
        raise HttpRefusal("400 Bad Request")
    data = text.encode("utf-8")
    try:
        root = etree.fromstring(data, PARSER)
    except etree.XMLSyntaxError:
        return Envelope([], None, data, _broken_body(data))
    if root.getroottree().docinfo.doctype or root.tag != f"{{{ENVELOPE}}}Envelope":
        raise HttpRefusal("400 Bad Request")
    return Envelope(*_parts(root), data)


def _broken_body(data: bytes) -> str:
    """The complaint about a body whose envelope, header and Body start tag read well; else 400."""
    reader = etree.XMLPullParser(events=("start", "end"), resolve_entities=False, no_network=True, load_dtd=False)
    try:
        reader.feed(data)
        reader.close()
        raise HttpRefusal("400 Bad Request")  # read whole here, so the whole was the trouble
    except etree.XMLSyntaxError as error:
        failure = error
    opened: list[str] = []
    in_body = False
    for event, element in reader.read_events():
        if event == "start":
            in_body = in_body or opened == [f"{{{ENVELOPE}}}Envelope"] and element.tag == f"{{{ENVELOPE}}}Body"
            opened.append(element.tag)
        else:
            opened.pop()
    if not in_body:
        raise HttpRefusal("400 Bad Request")
    line, position = failure.position
    lines = data.split(b"\n")
    if (line, position) >= (len(lines), len(lines[-1]) + 1):
        names = ", ".join(etree.QName(tag).localname for tag in reversed(opened))
        return f"Unexpected end of file. Following elements are not closed: {names}. Line {line}, position {position}."
    message = re.sub(r", line \d+, column \d+$", "", failure.msg)
    return f"{message}. Line {line}, position {position}."


def _parts(root: etree._Element) -> tuple[list[etree._Element], etree._Element]:
    """The header blocks and the Body; an envelope without a Body is unreadable (400)."""
    children = [c for c in root if isinstance(c.tag, str)]
    header = children[0] if children and children[0].tag == f"{{{ENVELOPE}}}Header" else None
    rest = children[1:] if header is not None else children
    if not rest or rest[0].tag != f"{{{ENVELOPE}}}Body":
        raise HttpRefusal("400 Bad Request")
    blocks = [c for c in header if isinstance(c.tag, str)] if header is not None else []
    return blocks, rest[0]


def read_body(envelope: Envelope, operation: Operation) -> dict:
    """The operation's arguments from the Body, or WCF's fault when its content cannot be read."""
    if envelope.broken is not None:
        raise deserialization_failed(
            f"Error in deserializing body of request message for operation '{operation.name}'. {envelope.broken}"
        )
    return read_parameters(operation, envelope.body, envelope.data)


def dispatch(contract: Contract, soap_action: str | None) -> Operation:
    """The operation the SOAPAction names, exactly; WCF never routes by the body."""
    action = (soap_action or "").strip()
    if len(action) >= 2 and action[0] == action[-1] == '"':
        action = action[1:-1]
    found = next((op for op in contract.operations if op.soap_action == action), None)
    if found is None:
        raise action_not_supported(action)
    return found


def check_headers(blocks: list[etree._Element]) -> None:
    """Basic HTTP binding understands no header but the Action and To of its own addressing."""
    for block in blocks:
        flag = (block.get(f"{{{ENVELOPE}}}mustUnderstand") or "").strip(XML_SPACE)
        name = etree.QName(block)
        if flag in ("1", "true") and not (name.namespace == ADDRESSING_NONE and name.localname in ("Action", "To")):
            raise not_understood(name.localname, name.namespace or "")


# --- positions, for the texts that name them ----------------------------------------------------
class _Found(Exception):
    """Stops the position search once it has its answer."""


def _position(data: bytes, index: int, kind: str | None) -> tuple[int, int]:
    """Line and position of the `index`-th element's start tag, or (kind "text"/"tail") of the text
    after its start or end tag, read with expat, which counts them as .NET's reader does."""
    parser = expat.ParserCreate(encoding="utf-8")
    state = {"count": -1, "open": [], "watch": False}
    answer: list[tuple[int, int]] = []

    def here() -> None:
        answer.append((parser.CurrentLineNumber, parser.CurrentColumnNumber + 1))
        raise _Found

    def start(name, attributes):
        state["count"] += 1
        state["open"].append(state["count"])
        if state["count"] == index:
            if kind is None:
                here()
            state["watch"] = kind == "text"
        else:
            state["watch"] = False

    def end(name):
        closed = state["open"].pop()
        state["watch"] = kind == "tail" and closed == index

    def characters(chunk):
        if state["watch"]:
            here()

    parser.StartElementHandler, parser.EndElementHandler = start, end
    parser.CharacterDataHandler = characters
    try:
        parser.Parse(data, True)
    except _Found:
        return answer[0]
    raise expat.error("not found")


def _index(element: etree._Element) -> int:
    """The element's place among the document's elements (lxml hands back the same proxy object
    for a node while one is alive, so identity finds it)."""
    elements = (e for e in element.getroottree().iter() if isinstance(e.tag, str))
    return next(i for i, e in enumerate(elements) if e is element)


def _where(data: bytes, element: etree._Element, kind: str | None = None) -> tuple[int, int]:
    """Where `element` starts, or (kind "text"/"tail") where the text after its start or end tag starts."""
    try:
        return _position(data, _index(element), kind)
    except expat.error:  # a document only libxml2 reads: its line, the line's start
        return element.sourceline or 1, 1


# --- parameters, as the DataContractSerializer reads them ---------------------------------------
CLR = {"string": "String", "int": "Int32", "long": "Int64", "boolean": "Boolean", "dateTime": "DateTime"}
CLR["base64Binary"] = "Byte[]"
INT_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
INTEGER = re.compile(r"[+-]?[0-9]+")
DATE_TIME = re.compile(
    r"-?[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}:[0-9]{2})?"
)
BASE64_ERROR = (
    "The input is not a valid Base-64 string as it contains a non-base 64 character, more than two padding "
    "characters, or an illegal character among the padding characters. "
)
DEFAULTS = {"int": 0, "long": 0, "boolean": False, "dateTime": datetime(1, 1, 1)}


class _ValueError(Exception):
    """A value the serializer cannot read; the text is its inner exception's message."""


def _is_nil(element: etree._Element) -> bool:
    return (element.get(f"{{{XSI}}}nil") or "").strip(XML_SPACE) in ("true", "1")


def _number(text: str, xsd_type: str) -> int:
    stripped = text.strip(XML_SPACE)
    low, high = INT_RANGES[xsd_type]
    if not INTEGER.fullmatch(stripped) or not low <= int(stripped) <= high:
        raise _ValueError(f"The value '{text}' cannot be parsed as the type '{CLR[xsd_type]}'.")
    return int(stripped)


def _date_time(text: str) -> datetime:
    stripped = text.strip(XML_SPACE)
    if not DATE_TIME.fullmatch(stripped):
        raise _ValueError(f"The string '{text}' is not a valid AllXsd value.")
    value = stripped.replace("Z", "+00:00")
    value = re.sub(r"\.([0-9]{6})[0-9]+", r".\1", value)
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise _ValueError(f"The string '{text}' is not a valid AllXsd value.") from None


def convert(text: str, xsd_type: str):
    """A wire text as the .NET type of `xsd_type`, or _ValueError with .NET's words."""
    if xsd_type in INT_RANGES:
        return _number(text, xsd_type)
    if xsd_type == "boolean":
        stripped = text.strip(XML_SPACE)
        if stripped not in ("true", "false", "1", "0"):
            raise _ValueError(f"The value '{text}' cannot be parsed as the type 'Boolean'.")
        return stripped in ("true", "1")
    if xsd_type == "dateTime":
        return _date_time(text)
    if xsd_type == "base64Binary":
        try:
            return base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            raise _ValueError(BASE64_ERROR) from None
    return text


def _content(element: etree._Element, data: bytes) -> str:
    """The text of a simple value; an element inside it is an error, as in .NET's reader."""
    child = next((c for c in element if isinstance(c.tag, str)), None)
    if child is not None:
        name = etree.QName(child)
        line, position = _where(data, child)
        raise _ValueError(
            f"End element '{etree.QName(element).localname}' from namespace '{etree.QName(element).namespace or ''}' "
            f"expected. Found element '{child.prefix + ':' if child.prefix else ''}{name.localname}' from namespace "
            f"'{name.namespace or ''}'. Line {line}, position {position}."
        )
    return "".join(element.itertext())


def _nodes(element: etree._Element):
    """An element's content in document order, as the reader meets it: ("text", owner, "text" or
    "tail") for text that is not white space, ("element", child, None) for a child element."""
    if (element.text or "").strip(XML_SPACE):
        yield "text", element, "text"
    for child in element:
        if isinstance(child.tag, str):
            yield "element", child, None
        if (child.tail or "").strip(XML_SPACE):
            yield "text", child, "tail"


def _item(element: etree._Element, item_type: str, data: bytes):
    try:
        if not _is_nil(element):
            return convert(_content(element, data), item_type)
        if item_type == "string":
            return None
        raise _ValueError(f"ValueType 'System.{CLR[item_type]}' cannot be null.")
    except _ValueError as error:
        raise _ValueError(f"There was an error deserializing the object of type System.{CLR[item_type]}[]. {error}")


def _array(element: etree._Element, field: Field, data: bytes) -> list:
    """Items named for the array's type in the Arrays namespace; other elements are skipped,
    text is an error."""
    item_type = ARRAY_ITEMS[field.type]
    item_tag = f"{{{ARRAYS}}}{item_type}"
    values = []
    for node, owner, kind in _nodes(element):
        if node == "text":
            line, position = _where(data, owner, kind)
            raise _ValueError(
                f"Error in line {line} position {position}. Expecting state 'Element'.. Encountered 'Text'  "
                "with name '', namespace ''. "
            )
        if owner.tag == item_tag:
            values.append(_item(owner, item_type, data))
    return values


KNOWN_TYPES = {(XS, name) for name in XS_PRIMITIVES} | {(ARRAYS, name) for name in ARRAY_ITEMS}
KNOWN_TYPES |= {(type_namespace(name), name) for name in ("ArrayOfMessageInfo", "MessageInfo", *ENUM_TYPES)}


def _check_type(element: etree._Element, field: Field) -> None:
    """An `xsi:type` must name the parameter's own type: a type the serializer does not know is a
    deserialization error, another known type fails when the value is passed on (internal)."""
    raw = element.get(f"{{{XSI}}}type")
    if raw is None:
        return
    prefix, _, local = raw.strip(XML_SPACE).rpartition(":")
    namespace = element.nsmap.get(prefix or None) or ""
    if (namespace, local) not in KNOWN_TYPES:
        raise _ValueError(
            f"Element '{TEMPURI}:{field.name}' contains data from a type that maps to the name '{namespace}:{local}'. "
            "The deserializer has no knowledge of any type that maps to this name. Consider using a "
            "DataContractResolver if you are using DataContractSerializer or add the type corresponding to "
            f"'{local}' to the list of known types - for example, by using the KnownTypeAttribute attribute or by "
            "adding it to the list of known types passed to the serializer."
        )
    if (namespace, local) != (field.namespace, field.type):
        raise internal_fault()


def _parameter(element: etree._Element, field: Field, data: bytes):
    try:
        _check_type(element, field)
        if _is_nil(element):
            return None
        if field.type in ARRAY_ITEMS:
            return _array(element, field, data)
        try:
            return convert(_content(element, data), field.type)
        except _ValueError as error:
            raise _ValueError(f"There was an error deserializing the object of type System.{CLR[field.type]}. {error}")
    except _ValueError as error:
        raise deserialization_failed(
            f"There was an error while trying to deserialize parameter {TEMPURI}:{field.name}. The InnerException "
            f"message was '{error}'.  Please see InnerException for more details."
        ) from None


def read_parameters(operation: Operation, body: etree._Element, data: bytes) -> dict:
    """The operation's arguments as WCF binds them: each parameter element is looked for after
    the last one read, so one out of order, repeated, unqualified or in another namespace is
    skipped and its parameter is missing (null; 0 or false for value types)."""
    values = {f.name: None for f in operation.request}
    wrapper = next((c for c in body if isinstance(c.tag, str)), None)
    misplaced = wrapper is not None and etree.QName(wrapper) != etree.QName(TEMPURI, operation.name)
    if misplaced or (body.text or "").strip(XML_SPACE):
        raise internal_fault()  # the formatter's SerializationException is no fault: an internal error
    expected = 0
    for kind, node, where in _nodes(wrapper) if wrapper is not None else ():
        if kind == "text":
            line, position = _where(data, node, where)
            raise deserialization_failed(
                f"Error in deserializing body of request message for operation '{operation.name}'. End element "
                f"'{operation.name}' from namespace '{TEMPURI}' expected. Found text "
                f"'{(node.text if where == 'text' else node.tail).strip(XML_SPACE)}'. Line {line}, position {position}."
            )
        name = etree.QName(node)
        for i in range(expected, len(operation.request)):
            field = operation.request[i]
            if name.namespace == TEMPURI and name.localname == field.name:
                values[field.name] = _parameter(node, field, data)
                expected = i + 1
                break
    _check_ends(operation, body, wrapper, data)
    return {f.name: DEFAULTS.get(f.type) if values[f.name] is None else values[f.name] for f in operation.request}


def _first_after(element: etree._Element) -> tuple[str, etree._Element] | None:
    """The first text ("text", its owner) or element ("element", it) after `element` inside its
    parent; comments and processing instructions are passed over, as the reader passes them."""
    node = element
    while node is not None:
        if (node.tail or "").strip(XML_SPACE):
            return "text", node
        node = node.getnext()
        if node is not None and isinstance(node.tag, str):
            return "element", node
    return None


def _check_ends(operation: Operation, body: etree._Element, wrapper: etree._Element | None, data: bytes) -> None:
    """After the wrapper the formatter reads the end of the Body, then of the Envelope: anything
    else there fails the request (DeserializationFailed). A request with an empty Body is never
    read by the formatter; the encoder's own reader refuses trailing content then (400)."""
    for inner, closing in ((wrapper, body), (body, body.getparent())):
        found = _first_after(inner) if inner is not None else None
        if found is None:
            continue
        if wrapper is None:
            raise HttpRefusal("400 Bad Request")
        kind, node = found
        if kind == "text":
            line, position = _where(data, node, "tail")
            what = f"text '{node.tail.strip(XML_SPACE)}'"
        else:
            line, position = _where(data, node)
            name = etree.QName(node)
            shown = f"{node.prefix}:{name.localname}" if node.prefix else name.localname
            what = f"element '{shown}' from namespace '{name.namespace or ''}'"
        raise deserialization_failed(
            f"Error in deserializing body of request message for operation '{operation.name}'. End element "
            f"'{etree.QName(closing).localname}' from namespace '{ENVELOPE}' expected. Found {what}. "
            f"Line {line}, position {position}."
        )

"""The contract's documents written as WCF writes them.

WCF declares a foreign namespace prefix (`q1`, `q2`, ...) on each element that uses it rather
than once at the top, writes DataContract members in their order, puts only the types a
generation reaches into its schemas, and serves either a WSDL importing six schemas
(`?wsdl`, `?xsd=xsdN`) or one document with every schema inline (`?singleWsdl`). Some SOAP
clients resolve prefixes only in the first layout, so the layout is part of the contract.
"""

from __future__ import annotations

from collections.abc import Callable
from xml.sax.saxutils import escape, quoteattr

from .contract import (
    ARRAY_ITEMS,
    ARRAYS,
    COMMON_ENUMS,
    DOMAIN_ENUMS,
    MODELS,
    SERIALIZATION,
    TEMPURI,
    XS,
    XS_PRIMITIVES,
    Contract,
    Field,
    Operation,
)

DECLARATION = '<?xml version="1.0" encoding="utf-8"?>'
SCHEMA_NAMESPACES = (TEMPURI, SERIALIZATION, ARRAYS, MODELS, COMMON_ENUMS, DOMAIN_ENUMS)
SCHEMA_NAMES = tuple(f"xsd{i}" for i in range(len(SCHEMA_NAMESPACES)))
# A schema's location from its name (xsd0 ...); None: inline, imports carry no location.
Locate = Callable[[str], "str | None"]

_WSDL_NAMESPACES = (
    ("wsdl", "http://schemas.xmlsoap.org/wsdl/"),
    ("wsx", "http://schemas.xmlsoap.org/ws/2004/09/mex"),
    ("wsu", "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"),
    ("wsa10", "http://www.w3.org/2005/08/addressing"),
    ("wsp", "http://schemas.xmlsoap.org/ws/2004/09/policy"),
    ("wsap", "http://schemas.xmlsoap.org/ws/2004/08/addressing/policy"),
    ("msc", "http://schemas.microsoft.com/ws/2005/12/wsdl/contract"),
    ("soap12", "http://schemas.xmlsoap.org/wsdl/soap12/"),
    ("wsa", "http://schemas.xmlsoap.org/ws/2004/08/addressing"),
    ("wsam", "http://www.w3.org/2007/05/addressing/metadata"),
    ("xsd", XS),
    ("tns", TEMPURI),
    ("soap", "http://schemas.xmlsoap.org/wsdl/soap/"),
    ("wsaw", "http://www.w3.org/2006/05/addressing/wsdl"),
    ("soapenc", "http://schemas.xmlsoap.org/soap/encoding/"),
)

# The serialization schema every WCF service exports unchanged.
_SERIALIZATION_BODY = (
    "".join(f'<xs:element name="{name}" nillable="true" type="xs:{name}"/>' for name in XS_PRIMITIVES)
    + '<xs:element name="char" nillable="true" type="tns:char"/><xs:simpleType name="char">'
    '<xs:restriction base="xs:int"/></xs:simpleType><xs:element name="duration" nillable="true" type="tns:duration"/>'
    '<xs:simpleType name="duration"><xs:restriction base="xs:duration">'
    '<xs:pattern value="\\-?P(\\d*D)?(T(\\d*H)?(\\d*M)?(\\d*(\\.\\d*)?S)?)?"/>'
    '<xs:minInclusive value="-P10675199DT2H48M5.4775808S"/><xs:maxInclusive value="P10675199DT2H48M5.4775807S"/>'
    '</xs:restriction></xs:simpleType><xs:element name="guid" nillable="true" type="tns:guid"/>'
    '<xs:simpleType name="guid"><xs:restriction base="xs:string">'
    '<xs:pattern value="[\\da-fA-F]{8}-[\\da-fA-F]{4}-[\\da-fA-F]{4}-[\\da-fA-F]{4}-[\\da-fA-F]{12}"/>'
    '</xs:restriction></xs:simpleType><xs:attribute name="FactoryType" type="xs:QName"/>'
    '<xs:attribute name="Id" type="xs:ID"/><xs:attribute name="Ref" type="xs:IDREF"/>'
)


class _Prefixes:
    """WCF's `qN` prefixes: a fresh one, declared on the element, for each foreign type used."""

    def __init__(self, own: str | None):
        self.own = own
        self.count = 0

    def type_attributes(self, field: Field) -> str:
        if field.namespace == XS:
            return f'type="xs:{field.type}"'
        if field.namespace == self.own:
            return f'type="tns:{field.type}"'
        self.count += 1
        return f'type="q{self.count}:{field.type}" xmlns:q{self.count}="{field.namespace}"'


def _member(field: Field, prefixes: _Prefixes, repeated: bool = False) -> str:
    occurs = 'minOccurs="0" maxOccurs="unbounded"' if repeated else 'minOccurs="0"'
    nillable = ' nillable="true"' if field.nillable else ""
    return f'<xs:element {occurs} name="{field.name}"{nillable} {prefixes.type_attributes(field)}/>'


def _schema(namespace: str, body: str, imports: tuple[str, ...], locate: Locate, *, tns: bool = True) -> str:
    """One `xs:schema` element; imports name the schemas (xsdN) it refers to."""
    attributes = 'attributeFormDefault="qualified" ' if namespace == SERIALIZATION else ""
    declarations = f' xmlns:tns="{namespace}"' if tns else ""
    head = (
        f'<xs:schema {attributes}elementFormDefault="qualified" targetNamespace="{namespace}" '
        f'xmlns:xs="{XS}"{declarations}>'
    )
    lines = []
    for name in imports:
        location = locate(name)
        where = f"schemaLocation={quoteattr(location)} " if location is not None else ""
        lines.append(f'<xs:import {where}namespace="{SCHEMA_NAMESPACES[SCHEMA_NAMES.index(name)]}"/>')
    return head + "".join(lines) + body + "</xs:schema>"


def _service_schema(contract: Contract, locate: Locate) -> str:
    prefixes = _Prefixes(None)
    body = []
    for op in contract.operations:
        for name, fields in ((op.name, op.request), (op.name + "Response", op.response)):
            members = "".join(_member(f, prefixes) for f in fields)
            body.append(f'<xs:element name="{name}"><xs:complexType><xs:sequence>{members}</xs:sequence>')
            body.append("</xs:complexType></xs:element>")
    return _schema(TEMPURI, "".join(body), ("xsd2", "xsd3"), locate, tns=False)


def _arrays_schema(locate: Locate) -> str:
    prefixes, body = _Prefixes(ARRAYS), []
    for array, item in ARRAY_ITEMS.items():
        member = _member(Field(item, item), prefixes, repeated=True)
        body.append(f'<xs:complexType name="{array}"><xs:sequence>{member}</xs:sequence></xs:complexType>')
        body.append(f'<xs:element name="{array}" nillable="true" type="tns:{array}"/>')
    return _schema(ARRAYS, "".join(body), (), locate)


def _models_schema(contract: Contract, locate: Locate) -> str:
    prefixes = _Prefixes(MODELS)
    item = _member(Field("MessageInfo", "MessageInfo"), prefixes, repeated=True)
    members = "".join(_member(f, prefixes) for f in contract.message_info)
    body = (
        f'<xs:complexType name="ArrayOfMessageInfo"><xs:sequence>{item}</xs:sequence></xs:complexType>'
        '<xs:element name="ArrayOfMessageInfo" nillable="true" type="tns:ArrayOfMessageInfo"/>'
        f'<xs:complexType name="MessageInfo"><xs:sequence>{members}</xs:sequence></xs:complexType>'
        '<xs:element name="MessageInfo" nillable="true" type="tns:MessageInfo"/>'
    )
    return _schema(MODELS, body, ("xsd4", "xsd5"), locate)


def _enum_type(name: str, values: tuple[tuple[str, int], ...]) -> str:
    """An enum as WCF exports it: a value is annotated only where it differs from its position."""
    facets = []
    for position, (value_name, value) in enumerate(values):
        if value == position:
            facets.append(f'<xs:enumeration value="{value_name}"/>')
            continue
        facets.append(
            f'<xs:enumeration value="{value_name}"><xs:annotation><xs:appinfo>'
            f'<EnumerationValue xmlns="{SERIALIZATION}">{value}</EnumerationValue>'
            "</xs:appinfo></xs:annotation></xs:enumeration>"
        )
    return (
        f'<xs:simpleType name="{name}"><xs:restriction base="xs:string">{"".join(facets)}</xs:restriction>'
        f'</xs:simpleType><xs:element name="{name}" nillable="true" type="tns:{name}"/>'
    )


def _enums_schema(contract: Contract, namespace: str, locate: Locate) -> str:
    used = [f.type for f in contract.message_info if f.namespace == namespace]
    body = "".join(_enum_type(name, contract.enums[name]) for name in used)
    return _schema(namespace, body, (), locate)


def schemas(contract: Contract, locate: Locate) -> dict[str, str]:
    """The six schemas of a generation by name (`xsd0` ... `xsd5`), without XML declaration."""
    return {
        "xsd0": _service_schema(contract, locate),
        "xsd1": _schema(SERIALIZATION, _SERIALIZATION_BODY, (), locate),
        "xsd2": _arrays_schema(locate),
        "xsd3": _models_schema(contract, locate),
        "xsd4": _enums_schema(contract, COMMON_ENUMS, locate),
        "xsd5": _enums_schema(contract, DOMAIN_ENUMS, locate),
    }


def _messages(op: Operation) -> str:
    return "".join(
        f'<wsdl:message name="ISendService_{op.name}_{kind}Message">'
        f'<wsdl:part name="parameters" element="tns:{op.name}{suffix}"/></wsdl:message>'
        for kind, suffix in (("Input", ""), ("Output", "Response"))
    )


def _port_operation(op: Operation) -> str:
    action = op.soap_action
    return (
        f'<wsdl:operation name="{op.name}">'
        f'<wsdl:input wsaw:Action="{action}" message="tns:ISendService_{op.name}_InputMessage"/>'
        f'<wsdl:output wsaw:Action="{action}Response" message="tns:ISendService_{op.name}_OutputMessage"/>'
        "</wsdl:operation>"
    )


def _binding_operation(op: Operation) -> str:
    literal = '<soap:body use="literal"/>'
    return (
        f'<wsdl:operation name="{op.name}"><soap:operation soapAction="{op.soap_action}" style="document"/>'
        f"<wsdl:input>{literal}</wsdl:input><wsdl:output>{literal}</wsdl:output></wsdl:operation>"
    )


def wsdl(contract: Contract, address: str, locate: Locate) -> str:
    """The WSDL; with `locate` returning None, every schema is inline (`?singleWsdl`)."""
    declarations = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in _WSDL_NAMESPACES)
    if locate("xsd0") is None:
        types = "".join(schemas(contract, locate).values())
    else:
        imports = "".join(
            f'<xsd:import schemaLocation={quoteattr(locate(name))} namespace="{namespace}"/>'
            for name, namespace in zip(SCHEMA_NAMES, SCHEMA_NAMESPACES)
        )
        types = f'<xsd:schema targetNamespace="{TEMPURI}Imports">{imports}</xsd:schema>'
    ops = contract.operations
    return (
        f'{DECLARATION}<wsdl:definitions name="SendService" targetNamespace="{TEMPURI}" {declarations}>'
        f"<wsdl:types>{types}</wsdl:types>"
        + "".join(map(_messages, ops))
        + '<wsdl:portType name="ISendService">'
        + "".join(map(_port_operation, ops))
        + '</wsdl:portType><wsdl:binding name="BasicHttpBinding_ISendService" type="tns:ISendService">'
        '<soap:binding transport="http://schemas.xmlsoap.org/soap/http"/>'
        + "".join(map(_binding_operation, ops))
        + '</wsdl:binding><wsdl:service name="SendService"><wsdl:port name="BasicHttpBinding_ISendService" '
        f'binding="tns:BasicHttpBinding_ISendService"><soap:address location={quoteattr(address)}/></wsdl:port>'
        "</wsdl:service></wsdl:definitions>"
    )


_HELP_STYLE = (
    "#content{ FONT-SIZE: 0.7em; PADDING-BOTTOM: 2em; MARGIN-LEFT: 30px}"
    "BODY{MARGIN-TOP: 0px; MARGIN-LEFT: 0px; COLOR: #000000; FONT-FAMILY: Verdana; BACKGROUND-COLOR: white}"
    "P{MARGIN-TOP: 0px; MARGIN-BOTTOM: 12px; COLOR: #000000; FONT-FAMILY: Verdana}"
    "PRE{BORDER-RIGHT: #f0f0e0 1px solid; PADDING-RIGHT: 5px; BORDER-TOP: #f0f0e0 1px solid; MARGIN-TOP: -5px; "
    "PADDING-LEFT: 5px; FONT-SIZE: 1.2em; PADDING-BOTTOM: 5px; BORDER-LEFT: #f0f0e0 1px solid; PADDING-TOP: 5px; "
    "BORDER-BOTTOM: #f0f0e0 1px solid; FONT-FAMILY: Courier New; BACKGROUND-COLOR: #e5e5cc}"
    ".heading1{MARGIN-TOP: 0px; PADDING-LEFT: 15px; FONT-WEIGHT: normal; FONT-SIZE: 26px; MARGIN-BOTTOM: 0px; "
    "PADDING-BOTTOM: 3px; MARGIN-LEFT: -30px; WIDTH: 100%; COLOR: #ffffff; PADDING-TOP: 10px; FONT-FAMILY: Tahoma; "
    "BACKGROUND-COLOR: #003366}.intro{display: block; font-size: 1em;}"
)


def help_page(address: str) -> str:
    """The HTML page WCF shows on a GET of the endpoint (service metadata on, help page on)."""
    url = escape(address, {'"': "&quot;"})
    return (
        f'<HTML lang="en"><HEAD><link rel="alternate" type="text/xml" href="{url}?disco"/>'
        f'<STYLE type="text/css">{_HELP_STYLE}</STYLE><TITLE>SendService Service</TITLE></HEAD>'
        '<BODY><DIV id="content" role="main"><h1 class="heading1">SendService Service</h1><BR/>'
        "<P class=\"intro\">You have created a service.<P class='intro'>To test this service, you will need to "
        "create a client and use it to call the service. You can do this using the svcutil.exe tool from the "
        "command line with the following syntax:</P> <BR/>"
        f'<PRE>svcutil.exe <A HREF="{url}?wsdl">{url}?wsdl</A></PRE>'
        "<P>You can also access the service description as a single file:<BR/>"
        f'<PRE><A HREF="{url}?singleWsdl">{url}?singleWsdl</A></PRE></P></P>'
        "This will generate a configuration file and a code file that contains the client class. Add the two "
        "files to your client application and use the generated client class to call the Service. For example:"
        '<BR/><P class=\'intro\'><B>C#</B></P><PRE><font color="blue">class </font><font color="teal">Test\n'
        '</font>{\n<font color="blue">    static void </font>Main()\n    {\n        <font color="teal">'
        'SendServiceClient</font> client = <font color="blue">new </font><font color="teal">SendServiceClient'
        "</font>();\n\n<font color=\"darkgreen\">        // Use the 'client' variable to call operations on the "
        'service.\n\n</font><font color="darkgreen">        // Always close the client.\n</font>        '
        "client.Close();\n    }\n}\n</PRE><BR/><P class='intro'><B>Visual Basic</B></P><PRE>"
        '<font color="blue">Class </font><font color="teal">Test\n</font><font color="blue">    Shared Sub '
        '</font>Main()\n<font color="blue">        Dim </font>client As <font color="teal">SendServiceClient'
        '</font> = <font color="blue">New </font><font color="teal">SendServiceClient</font>()\n'
        "<font color=\"darkgreen\">        ' Use the 'client' variable to call operations on the service.\n\n"
        '</font><font color="darkgreen">        \' Always close the client.\n</font>        client.Close()\n'
        '<font color="blue">    End Sub\n</font><font color="blue">End Class</font></PRE></DIV></BODY></HTML>'
    )

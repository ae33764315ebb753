"""The service's contract (WSDL and its six schemas), written from the provider's documentation.

The files import each other by relative name (`xsd0.xsd` ...), so zeep can load the bundled
copy from disk; `served()` rewrites those names to `?xsd=xsdN` addresses the way WCF serves them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from lxml import etree

WSDL_PATH = Path(str(resources.files(__name__).joinpath("SendService.wsdl")))
SCHEMA_NAMES = tuple(f"xsd{i}" for i in range(6))
TEMPURI = "http://tempuri.org/"
SOAP_ACTION_PREFIX = "http://tempuri.org/ISendService/"
REAL_ADDRESS = "http://payamak-service.ir/SendService.svc"
XS = "{http://www.w3.org/2001/XMLSchema}"


@cache
def document(name: str) -> bytes:
    """The bytes of `SendService.wsdl` or of a schema (`xsd0` ... `xsd5`)."""
    filename = "SendService.wsdl" if name == "wsdl" else f"{name}.xsd"
    return WSDL_PATH.with_name(filename).read_bytes()


def served(name: str, address: str) -> bytes:
    """A document as a server at `address` serves it: imports and the port point back at it."""
    text = document(name).decode("utf-8")
    text = re.sub(r'schemaLocation="(xsd\d)\.xsd"', rf'schemaLocation="{address}?xsd=\1"', text)
    return text.replace(REAL_ADDRESS, address).encode("utf-8")


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # the local name of its XSD type: string, int, ArrayOfstring, ...


@dataclass(frozen=True)
class Operation:
    name: str
    request: tuple[Field, ...]
    response: tuple[Field, ...]

    @property
    def soap_action(self) -> str:
        return SOAP_ACTION_PREFIX + self.name


def _fields(element: etree._Element) -> tuple[Field, ...]:
    return tuple(
        Field(child.get("name"), child.get("type").split(":")[1])
        for child in element.iter(f"{XS}element")
        if child is not element
    )


@cache
def operations() -> dict[str, Operation]:
    """Every operation of the contract, in WSDL order, with its request and response fields."""
    schema = etree.fromstring(document("xsd0"))
    elements = {el.get("name"): el for el in schema.findall(f"{XS}element")}
    wsdl = etree.fromstring(document("wsdl"))
    names = [op.get("name") for op in wsdl.iter("{http://schemas.xmlsoap.org/wsdl/}operation")]
    ordered = list(dict.fromkeys(names))
    return {name: Operation(name, _fields(elements[name]), _fields(elements[name + "Response"])) for name in ordered}

"""The service's contract (WSDL and its six schemas), shared by the client and the simulator.

The facts live in `contract.py` and are written out as WCF writes them by `documents.py`. The
files beside this module are the default (2022) generation written for disk: they import each
other by relative name (`xsd0.xsd` ...) so that zeep can load the bundled copy offline.
`write_bundled()` rewrites them; a test checks that they equal what the writer produces.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from . import documents
from .contract import (
    DEFAULT_GENERATION,
    GENERATIONS,
    TEMPURI,
    Contract,
    Field,
    Operation,
    contract,
)

__all__ = [
    "DEFAULT_GENERATION",
    "GENERATIONS",
    "REAL_ADDRESS",
    "SCHEMA_NAMES",
    "SOAP_ACTION_PREFIX",
    "TEMPURI",
    "WSDL_PATH",
    "Contract",
    "Field",
    "Operation",
    "contract",
    "document",
    "help_page",
    "operations",
    "served",
    "write_bundled",
]

WSDL_PATH = Path(str(resources.files(__name__).joinpath("SendService.wsdl")))
SCHEMA_NAMES = documents.SCHEMA_NAMES
SOAP_ACTION_PREFIX = f"{TEMPURI}ISendService/"
REAL_ADDRESS = "http://payamak-service.ir/SendService.svc"


def _on_disk(name: str) -> str:
    return f"{name}.xsd"


@cache
def _bundled(generation: str) -> dict[str, bytes]:
    chosen = contract(generation)
    texts = {"wsdl": documents.wsdl(chosen, REAL_ADDRESS, _on_disk)}
    for name, schema in documents.schemas(chosen, _on_disk).items():
        texts[name] = documents.DECLARATION + schema
    return {name: text.encode("utf-8") for name, text in texts.items()}


def document(name: str, generation: str = DEFAULT_GENERATION) -> bytes:
    """The bytes of the WSDL (`wsdl`) or of a schema (`xsd0` ... `xsd5`) as bundled on disk."""
    return _bundled(generation)[name]


def served(name: str, address: str, generation: str = DEFAULT_GENERATION) -> bytes:
    """A document as a WCF service at `address` serves it: `wsdl` imports `address?xsd=xsdN`,
    `singleWsdl` holds every schema inline, `xsd0` ... `xsd5` are the schemas."""
    chosen = contract(generation)

    def locate(schema: str) -> str | None:
        return None if name == "singleWsdl" else f"{address}?xsd={schema}"

    if name in ("wsdl", "singleWsdl"):
        return documents.wsdl(chosen, address, locate).encode("utf-8")
    return (documents.DECLARATION + documents.schemas(chosen, locate)[name]).encode("utf-8")


def help_page(address: str) -> bytes:
    return documents.help_page(address).encode("utf-8")


@cache
def operations(generation: str = DEFAULT_GENERATION) -> dict[str, Operation]:
    """Every operation of a generation, in WSDL order, with its request and response fields."""
    return {op.name: op for op in contract(generation).operations}


def write_bundled(folder: Path | None = None) -> None:
    """Write the default generation's documents for disk into `folder` (this package by default)."""
    folder = folder or WSDL_PATH.parent
    for name, data in _bundled(DEFAULT_GENERATION).items():
        (folder / ("SendService.wsdl" if name == "wsdl" else f"{name}.xsd")).write_bytes(data)

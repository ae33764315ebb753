"""The simulator refuses what a WCF service refuses, over real HTTP: each case is a request a
lenient emulator would read and the real service does not, so that code tested here does not
break there."""

from __future__ import annotations

import pytest
import requests
from lxml import etree

from payamak_analytics import wsdl
from payamak_analytics.simulator import Simulator

from .conftest import REFERENCE_WSDL, world_config

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
ACTION = '"http://tempuri.org/ISendService/GetCredit"'
GET_CREDIT = (
    f'<s:Envelope xmlns:s="{SOAP}"><s:Body><GetCredit xmlns="http://tempuri.org/"><userName>demo</userName>'
    "<password>demo</password></GetCredit></s:Body></s:Envelope>"
)


@pytest.fixture(scope="module")
def served():
    with Simulator(world_config(messages=100)) as simulator:
        yield simulator


def post(simulator, data: bytes, content_type: str) -> requests.Response:
    headers = {"Content-Type": content_type, "SOAPAction": ACTION}
    return requests.post(simulator.url, data=data, headers=headers, timeout=30)


def declared(encoding: str) -> str:
    return f'<?xml version="1.0" encoding="{encoding}"?>' + GET_CREDIT


# The body's bytes, the content type: each pair disagrees about the encoding, which .NET's reader
# refuses before any SOAP processing (400, no body).
MISMATCHES = {
    "UTF-16 bytes with a BOM, charset utf-8": (GET_CREDIT.encode("utf-16"), "text/xml; charset=utf-8"),
    "UTF-16 bytes without a BOM, charset utf-8": (GET_CREDIT.encode("utf-16-le"), "text/xml; charset=utf-8"),
    "UTF-8 bytes, charset utf-16": (GET_CREDIT.encode(), "text/xml; charset=utf-16"),
    "big-endian bytes, charset utf-16LE": (b"\xfe\xff" + GET_CREDIT.encode("utf-16-be"), "text/xml; charset=utf-16LE"),
    "UTF-8 bytes declared utf-16": (declared("utf-16").encode(), "text/xml; charset=utf-8"),
    "UTF-16 bytes declared utf-8": (declared("utf-8").encode("utf-16"), "text/xml; charset=utf-16"),
    "UTF-8 bytes declared utf-16, no charset": (declared("utf-16").encode(), "text/xml"),
}
AGREEMENTS = {
    "UTF-8 with a BOM": (b"\xef\xbb\xbf" + declared("utf-8").encode(), "text/xml; charset=utf-8"),
    "UTF-16 either byte order for charset utf-16": (
        b"\xfe\xff" + GET_CREDIT.encode("utf-16-be"),
        "text/xml; charset=utf-16",
    ),
    "UTF-16 declared and named": (declared("utf-16").encode("utf-16"), "text/xml; charset=utf-16"),
    "UTF-16 found by its BOM, no charset": (GET_CREDIT.encode("utf-16"), "text/xml"),
    "charset in capitals and quotes": (GET_CREDIT.encode(), 'text/xml; charset="UTF-8"'),
}


@pytest.mark.parametrize("charset", ["unicodeFFFE", "utf-32", "utf8", "windows-1256"])
def test_a_charset_the_text_encoder_does_not_take_is_415(served, charset):
    response = post(served, GET_CREDIT.encode(), f"text/xml; charset={charset}")
    assert response.status_code == 415 and response.content == b""


@pytest.mark.parametrize("case", MISMATCHES)
def test_an_encoding_the_bytes_do_not_have_is_a_bad_request(served, case):
    data, content_type = MISMATCHES[case]
    response = post(served, data, content_type)
    assert (response.status_code, response.content) == (400, b"")


@pytest.mark.parametrize("case", AGREEMENTS)
def test_bytes_in_the_encoding_they_are_named_are_read(served, case):
    data, content_type = AGREEMENTS[case]
    response = post(served, data, content_type)
    assert response.status_code == 200, response.content
    assert etree.fromstring(response.content).findtext(".//{http://tempuri.org/}GetCreditResult") == "1000000"


@pytest.mark.skipif(not REFERENCE_WSDL.exists(), reason="the real service's saved WSDL is absent")
def test_the_served_wsdl_is_the_real_services_byte_for_byte(served):
    """The 2022 generation's WSDL at the real address is the saved copy of the real one, to the byte."""
    ours = wsdl.served("wsdl", wsdl.REAL_ADDRESS, "2022")
    assert ours == REFERENCE_WSDL.read_bytes().rstrip(b"\r\n")
    at_home = requests.get(served.url + "?wsdl", timeout=10).content
    assert at_home == ours.replace(wsdl.REAL_ADDRESS.encode(), served.url.encode())


# --- what follows the operation's element ------------------------------------------------------
DISPATCHER = "http://schemas.microsoft.com/net/2005/12/windowscommunicationfoundation/dispatcher"
WRAPPER = GET_CREDIT[GET_CREDIT.index("<GetCredit") : GET_CREDIT.index("</s:Body>")]
SEND = (
    '<SendSMS xmlns="http://tempuri.org/"><userName>demo</userName><password>demo</password>'
    "<fromNumber>10002188</fromNumber><toNumbers><string "
    'xmlns="http://schemas.microsoft.com/2003/10/Serialization/Arrays">09121234567</string></toNumbers>'
    "<messageContent>hi</messageContent><isFlash>false</isFlash></SendSMS>"
)


def envelope(body: str, after_body: str = "") -> bytes:
    return f'<s:Envelope xmlns:s="{SOAP}"><s:Body>{body}</s:Body>{after_body}</s:Envelope>'.encode()


def fault_of(response) -> tuple[str, str]:
    assert response.status_code == 500, response.content
    root = etree.fromstring(response.content)
    code = root.find(f"{{{SOAP}}}Body/{{{SOAP}}}Fault/faultcode")
    prefix, _, local = code.text.partition(":")
    return f"{{{code.nsmap[prefix]}}}{local}", root.findtext(f"{{{SOAP}}}Body/{{{SOAP}}}Fault/faultstring")


@pytest.mark.parametrize(
    "body, after_body, closing, found",
    [
        (WRAPPER + "<x/>", "", "Body", "element 'x' from namespace ''"),
        (WRAPPER + '<p:GetCredit xmlns:p="http://tempuri.org/"/>', "", "Body", "element 'p:GetCredit' from namespace"),
        (WRAPPER + "junk", "", "Body", "text 'junk'"),
        (WRAPPER, "<x/>", "Envelope", "element 'x' from namespace ''"),
        (WRAPPER, "junk", "Envelope", "text 'junk'"),
    ],
)
def test_anything_after_the_operations_element_fails_the_request(served, body, after_body, closing, found):
    code, text = fault_of(post(served, envelope(body, after_body), "text/xml; charset=utf-8"))
    assert code == f"{{{DISPATCHER}}}DeserializationFailed"
    assert (
        "Error in deserializing body of request message for operation 'GetCredit'. "
        f"End element '{closing}' from namespace '{SOAP}' expected. Found {found}"
    ) in text
    assert "Line 1, position " in text


def test_a_send_with_something_after_it_never_goes_out(make_simulator):
    simulator = make_simulator()
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '"http://tempuri.org/ISendService/SendSMS"'}
    twice = requests.post(simulator.url, data=envelope(SEND + SEND), headers=headers, timeout=30)
    assert fault_of(twice)[0] == f"{{{DISPATCHER}}}DeserializationFailed"
    assert len(simulator.world.sends) == 0
    once = requests.post(simulator.url, data=envelope(f"{SEND} <!-- sent by a tool -->\n"), headers=headers, timeout=30)
    assert once.status_code == 200 and len(simulator.world.sends) == 1  # comments and white space are passed over


def test_an_empty_body_with_something_after_it_is_a_bad_request(served):
    response = post(served, envelope("", "<x/>"), "text/xml; charset=utf-8")
    assert (response.status_code, response.content) == (400, b"")
    empty = post(served, envelope(""), "text/xml; charset=utf-8")  # no parameters: every one is null
    assert etree.fromstring(empty.content).findtext(".//{http://tempuri.org/}GetCreditResult") == "-1"

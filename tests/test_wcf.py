"""The simulator as a WCF basicHttpBinding service, over real HTTP: its documents, how it reads
requests, how it refuses them, and its contract generations; with zeep in strict mode, PHP's
SoapClient and raw requests for what no SOAP client would send."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
import zeep
from lxml import etree

from payamak_analytics import wsdl
from payamak_analytics.simulator import Simulator

from .conftest import REFERENCE_WSDL, strict_zeep, world_config

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
XS = "http://www.w3.org/2001/XMLSchema"
W = "{http://schemas.xmlsoap.org/wsdl/}"
ARRAYS = "http://schemas.microsoft.com/2003/10/Serialization/Arrays"
DISPATCHER = "http://schemas.microsoft.com/net/2005/12/windowscommunicationfoundation/dispatcher"
ACTION = "http://tempuri.org/ISendService/"
CREDENTIALS = "<userName>demo</userName><password>demo</password>"


def envelope(body: str, header: str = "") -> bytes:
    head = f"<s:Header>{header}</s:Header>" if header else ""
    return f'<s:Envelope xmlns:s="{SOAP}">{head}<s:Body>{body}</s:Body></s:Envelope>'.encode()


def post(simulator, data: bytes, action: str | None, content_type: str = "text/xml; charset=utf-8"):
    headers = {"Content-Type": content_type}
    if action is not None:
        headers["SOAPAction"] = f'"{ACTION}{action}"' if action else ""
    return requests.post(simulator.url, data=data, headers=headers, timeout=30)


def fault(response) -> tuple[str, str, str]:
    """(faultcode's namespace, its local name, faultstring) of a SOAP 1.1 fault answer."""
    assert response.status_code == 500 and response.headers["Content-Type"].startswith("text/xml")
    root = etree.fromstring(response.content)
    element = root.find(f"{{{SOAP}}}Body/{{{SOAP}}}Fault/faultcode")
    prefix, _, local = element.text.partition(":")
    text = root.find(f"{{{SOAP}}}Body/{{{SOAP}}}Fault/faultstring")
    assert text.get("{http://www.w3.org/XML/1998/namespace}lang") == "en-US"
    return element.nsmap[prefix], local, text.text


def result(response, name: str) -> str:
    assert response.status_code == 200, response.content
    return etree.fromstring(response.content).find(f".//{{http://tempuri.org/}}{name}").text


def sent(simulator) -> int:
    return len(simulator.world.sends)


@pytest.fixture(scope="module")
def served():
    """One read-only simulator per contract generation."""
    simulators = {g: Simulator(world_config(messages=1500), contract=g).start() for g in wsdl.GENERATIONS}
    yield simulators
    for simulator in simulators.values():
        simulator.stop()


# --- documents --------------------------------------------------------------------------------
def test_queries_match_in_any_letter_case_and_other_paths_are_404(served):
    url = served["2022"].url
    wsdl_text = requests.get(url + "?wsdl", timeout=10).content
    for query in ("?WSDL", "?Wsdl", "?wSdL"):
        assert requests.get(url + query, timeout=10).content == wsdl_text
    schema = requests.get(url + "?xsd=xsd3", timeout=10).content
    assert requests.get(url + "?XSD=xsd3", timeout=10).content == schema
    assert requests.get(url + "?xsd=XSD3", timeout=10).content == schema
    assert etree.fromstring(schema).tag == f"{{{XS}}}schema"
    assert requests.get(url + "?xsd=xsd9", timeout=10).status_code == 404
    base = url.rsplit("/", 1)[0]
    for path in ("/", "/other.svc", "/SendService.svc/extra", "/SendService.asmx"):
        assert requests.get(base + path, timeout=10).status_code == 404
        assert requests.post(base + path, data=b"<x/>", timeout=10).status_code == 404
    assert requests.get(base + "/sendservice.SVC?wsdl", timeout=10).content == wsdl_text


def test_the_endpoint_shows_wcf_help_page(served):
    page = requests.get(served["2022"].url, timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "<TITLE>SendService Service</TITLE>" in page.text and "You have created a service." in page.text
    assert f'svcutil.exe <A HREF="{served["2022"].url}?wsdl">' in page.text
    assert f"{served['2022'].url}?singleWsdl" in page.text


def test_prefixes_are_declared_on_the_element_that_uses_them(served):
    """WCF's layout: `type="q1:ArrayOfstring" xmlns:q1="..."`, never a foreign prefix from the top."""
    simulator = served["2022"]
    uses = 0
    for name in wsdl.SCHEMA_NAMES:
        root = etree.fromstring(requests.get(f"{simulator.url}?xsd={name}", timeout=10).content)
        assert set(root.nsmap) <= {"xs", "tns"}
        for element in root.iter(f"{{{XS}}}element"):
            prefix = (element.get("type") or "xs:").split(":")[0]
            if prefix not in ("xs", "tns"):
                parent = element.getparent().nsmap
                assert prefix in element.nsmap and parent.get(prefix) != element.nsmap[prefix], element.get("name")
                uses += 1
    assert uses >= 15  # every array parameter and every enum member of MessageInfo


def test_single_wsdl_holds_every_schema_inline_and_loads_in_zeep(served):
    simulator = served["2022"]
    document = requests.get(simulator.url + "?singleWsdl", timeout=10).content
    root = etree.fromstring(document)
    schemas = root.findall(f"{W}types/{{{XS}}}schema")
    assert [s.get("targetNamespace") for s in schemas] == [
        etree.fromstring(wsdl.served(n, simulator.url)).get("targetNamespace") for n in wsdl.SCHEMA_NAMES
    ]
    assert not [i for i in root.iter(f"{{{XS}}}import") if i.get("schemaLocation")]
    client = zeep.Client(simulator.url + "?singleWsdl", settings=zeep.Settings(strict=True))
    assert client.service.GetCredit("demo", "demo") == 1_000_000
    assert client.service.GetBatchDelivery("demo", "demo", 1, 1, 1)["GetBatchDeliveryResult"] in (0, -2)


@pytest.mark.skipif(not REFERENCE_WSDL.exists(), reason="the real service's saved WSDL is absent")
def test_wsdl_declares_what_the_real_one_declares(served):
    ours = etree.fromstring(requests.get(served["2022"].url + "?wsdl", timeout=10).content)
    theirs = etree.parse(str(REFERENCE_WSDL)).getroot()
    assert ours.nsmap == theirs.nsmap
    assert [e.tag for e in ours.iter() if isinstance(e.tag, str)] == [
        e.tag for e in theirs.iter() if isinstance(e.tag, str)
    ]


def test_bundled_files_are_what_the_writer_writes():
    for name in ("wsdl", *wsdl.SCHEMA_NAMES):
        path = wsdl.WSDL_PATH if name == "wsdl" else wsdl.WSDL_PATH.with_name(f"{name}.xsd")
        assert path.read_bytes() == wsdl.document(name), f"{path.name}: run wsdl.write_bundled()"


# --- contract generations ---------------------------------------------------------------------
def enum_values(simulator, name: str) -> list[str]:
    root = etree.fromstring(requests.get(simulator.url + "?xsd=xsd5", timeout=10).content)
    found = root.find(f"{{{XS}}}simpleType[@name='{name}']")
    return [] if found is None else [e.get("value") for e in found.iter(f"{{{XS}}}enumeration")]


def message_info_fields(simulator) -> list[str]:
    root = etree.fromstring(requests.get(simulator.url + "?xsd=xsd3", timeout=10).content)
    info = root.find(f"{{{XS}}}complexType[@name='MessageInfo']")
    return [e.get("name") for e in info.iter(f"{{{XS}}}element")]


def test_default_contract_is_the_2022_one_and_newer_values_need_the_switch(served):
    default, latest = served["2022"], served["latest"]
    assert enum_values(default, "SMSStatus")[-1] == "InQueue" and len(enum_values(default, "SMSStatus")) == 13
    assert enum_values(default, "SMSSendMethod")[-1] == "UsanceSms"
    assert enum_values(latest, "SMSStatus")[-1] == "ManyToManyCalcCost"
    assert enum_values(latest, "SMSSendMethod")[-5:] == [
        "AgeAndGender",
        "System",
        "BirthdaySms",
        "KioskSms",
        "CancellationBy11",
    ]
    assert message_info_fields(default) == message_info_fields(latest) == sorted(message_info_fields(default))
    assert len(message_info_fields(default)) == 22
    assert len(strict_zeep(latest).service.GetMessages("demo", "demo", 2, None, 1, 10)) == 10


def test_the_2020_generation_lacks_what_it_lacked(served):
    old = served["2020"]
    assert set(message_info_fields(served["2022"])) - set(message_info_fields(old)) == {
        "Cost",
        "SendMethod",
        "SendStatus",
    }
    assert enum_values(old, "SMSSendMethod") == [] and enum_values(old, "SMSStatus")
    client = strict_zeep(old)
    operations = set(client.wsdl.bindings["{http://tempuri.org/}BasicHttpBinding_ISendService"].all())
    assert len(operations) == 15 and "GetMessagesByDateRange" not in operations
    page = client.service.GetMessages("demo", "demo", 2, None, 1, 50)
    assert len(page) == 50 and all(not hasattr(m, "Cost") and m.Status for m in page)
    by_range = envelope(f'<GetMessagesByDateRange xmlns="http://tempuri.org/">{CREDENTIALS}</GetMessagesByDateRange>')
    assert fault(post(old, by_range, "GetMessagesByDateRange"))[1] == "ActionNotSupported"


def test_every_answer_validates_against_the_served_schemas(served):
    """A stub generated from a generation's schemas reads every value the simulator writes in it."""
    for generation, simulator in served.items():
        schema = _schema(simulator, generation)
        for direction in (1, 2):
            index = 1
            while True:
                body = envelope(
                    f'<GetMessages xmlns="http://tempuri.org/">{CREDENTIALS}<messageType>{direction}</messageType>'
                    f"<index>{index}</index><count>1000</count></GetMessages>"
                )
                answer = etree.fromstring(post(simulator, body, "GetMessages").content)
                response = answer.find(f"{{{SOAP}}}Body")[0]
                schema.assertValid(etree.ElementTree(response))
                rows = len(response[0])
                if rows < 1000:
                    break
                index += rows


def _schema(simulator, generation: str) -> etree.XMLSchema:
    """The generation's service schema with its imports, loaded from the simulator itself."""
    root = etree.fromstring(wsdl.served("xsd0", simulator.url, generation))
    parser = etree.XMLParser(no_network=False)

    class FromSimulator(etree.Resolver):
        def resolve(self, url, public_id, context):
            return self.resolve_string(requests.get(url, timeout=10).content, context)

    parser.resolvers.add(FromSimulator())
    return etree.XMLSchema(etree.fromstring(etree.tostring(root), parser, base_url=simulator.url))


# --- transport --------------------------------------------------------------------------------
SEND = (
    '<SendSMS xmlns="http://tempuri.org/">' + CREDENTIALS + "<fromNumber>10002188</fromNumber>"
    f'<toNumbers xmlns:a="{ARRAYS}"><a:string>09121234567</a:string></toNumbers>'
    "<messageContent>hi</messageContent><isFlash>false</isFlash></SendSMS>"
)


@pytest.mark.parametrize("action", [None, "", "http://tempuri.org/ISendService/SendSms", "SendSMS"])
def test_a_missing_or_wrong_soap_action_is_a_contract_filter_mismatch(simulator, action):
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    if action is not None:
        headers["SOAPAction"] = action
    response = requests.post(simulator.url, data=envelope(SEND), headers=headers, timeout=30)
    namespace, code, text = fault(response)
    assert (namespace, code) == ("http://schemas.microsoft.com/ws/2005/05/addressing/none", "ActionNotSupported")
    assert text.startswith(f"The message with Action '{action or ''}' cannot be processed at the receiver, due to")
    assert "ContractFilter mismatch at the EndpointDispatcher" in text and sent(simulator) == 0


def test_the_fault_is_written_as_wcf_writes_it(simulator):
    response = post(simulator, envelope(SEND), "")
    assert response.content == (
        b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode xmlns:a="'
        b'http://schemas.microsoft.com/ws/2005/05/addressing/none">a:ActionNotSupported</faultcode><faultstring '
        b"xml:lang=\"en-US\">The message with Action '' cannot be processed at the receiver, due to a ContractFilter "
        b"mismatch at the EndpointDispatcher. This may be because of either a contract mismatch (mismatched Actions "
        b"between sender and receiver) or a binding/security mismatch between the sender and the receiver.  Check "
        b"that sender and receiver have the same contract and the same binding (including security requirements, "
        b"e.g. Message, Transport, None).</faultstring></s:Fault></s:Body></s:Envelope>"
    )


@pytest.mark.parametrize(
    "content_type",
    ["application/soap+xml; charset=utf-8", "application/json", "text/xml; charset=iso-8859-1", "text/plain"],
)
def test_a_content_type_other_than_soap_11_is_415(simulator, content_type):
    response = post(simulator, envelope(SEND), "SendSMS", content_type)
    assert response.status_code == 415 and response.content == b""
    assert response.reason == (
        f"Cannot process the message because the content type '{content_type}' was not the expected type "
        "'text/xml; charset=utf-8'."
    )
    assert sent(simulator) == 0


def test_a_header_nobody_understands_is_refused(simulator):
    header = '<Tx s:mustUnderstand="1" xmlns="urn:example:transactions">1</Tx>'
    namespace, code, text = fault(post(simulator, envelope(SEND, header), "SendSMS"))
    assert (namespace, code) == (SOAP, "MustUnderstand")
    assert text.startswith("The header 'Tx' from the namespace 'urn:example:transactions' was not understood")
    assert sent(simulator) == 0
    optional = '<Tx xmlns="urn:example:transactions">1</Tx>'
    assert result(post(simulator, envelope(SEND, optional), "SendSMS"), "SendSMSResult") == "0"


def test_utf16_bodies_are_read_and_a_dtd_is_refused_in_any_encoding(simulator):
    plain = '<?xml version="1.0" encoding="utf-16"?>' + envelope(SEND).decode()
    assert (
        result(post(simulator, plain.encode("utf-16"), "SendSMS", "text/xml; charset=utf-16"), "SendSMSResult") == "0"
    )
    hostile = '<?xml version="1.0" encoding="utf-16"?><!DOCTYPE x [<!ENTITY e "x">]>' + envelope(SEND).decode()
    for encoded in (hostile.encode("utf-16"), hostile.encode("utf-16-be"), hostile.encode("utf-8")):
        response = post(simulator, encoded, "SendSMS", "text/xml")
        assert response.status_code == 400 and response.content == b""
    assert sent(simulator) == 1


# --- parameters as the DataContractSerializer reads them ---------------------------------------
def send_with(numbers_xml: str) -> bytes:
    return envelope(
        f'<SendSMS xmlns="http://tempuri.org/">{CREDENTIALS}<fromNumber>10002188</fromNumber>{numbers_xml}'
        "<messageContent>hi</messageContent><isFlash>false</isFlash></SendSMS>"
    )


def test_text_where_an_array_belongs_is_deserialization_failed(simulator):
    body = send_with("<toNumbers>09121234567</toNumbers><toNumbers>09351234567</toNumbers>")
    namespace, code, text = fault(post(simulator, body, "SendSMS"))
    assert (namespace, code) == (DISPATCHER, "DeserializationFailed")
    assert text.startswith(
        "The formatter threw an exception while trying to deserialize the message: There was an error while trying "
        "to deserialize parameter http://tempuri.org/:toNumbers. The InnerException message was 'Error in line 1 "
        "position "
    )
    assert text.endswith(
        "Expecting state 'Element'.. Encountered 'Text'  with name '', namespace ''. '.  Please see InnerException "
        "for more details."
    )
    assert sent(simulator) == 0


@pytest.mark.parametrize(
    "items",
    [
        "<string>09121234567</string>",  # no namespace
        '<string xmlns="http://tempuri.org/">09121234567</string>',  # the wrapper's namespace
        f'<a:long xmlns:a="{ARRAYS}">9121234567</a:long>',  # another item name
    ],
)
def test_array_items_of_another_name_or_namespace_are_skipped(simulator, items):
    body = send_with(f"<toNumbers>{items}{items}</toNumbers>")
    assert result(post(simulator, body, "SendSMS"), "SendSMSResult") == "5"  # an empty list: nobody to send to
    assert sent(simulator) == 0


def test_a_line_filter_with_unreadable_items_reads_as_no_filter(shared_simulator):
    def page(lines: str) -> list[str]:
        body = envelope(
            f'<GetMessages xmlns="http://tempuri.org/">{CREDENTIALS}<messageType>2</messageType>'
            f"<fromNumbers>{lines}</fromNumbers><index>1</index><count>50</count></GetMessages>"
        )
        answer = etree.fromstring(post(shared_simulator, body, "GetMessages").content)
        return [e.text for e in answer.iter("{http://schemas.datacontract.org/2004/07/SMSPanel.Domain.Models}Sender")]

    assert set(page(f'<a:string xmlns:a="{ARRAYS}">50001234</a:string>')) == {"50001234"}
    everything = page("")
    assert len(set(everything)) > 1 and page("<string>50001234</string>") == everything


@pytest.mark.parametrize(
    "inner",
    [
        "<password>demo</password><userName>demo</userName>",  # out of order: userName is missing
        '<userName xmlns="">demo</userName><password xmlns="">demo</password>',  # unqualified
        '<userName xmlns="urn:other">demo</userName><password>demo</password>',  # another namespace
        "<userName>demo</userName><userName>x</userName>",  # repeated: password is missing
    ],
)
def test_parameters_out_of_order_or_misqualified_read_as_missing(shared_simulator, inner):
    body = envelope(
        f'<tem:GetCredit xmlns:tem="http://tempuri.org/" xmlns="http://tempuri.org/">{inner}</tem:GetCredit>'
    )
    assert result(post(shared_simulator, body, "GetCredit"), "GetCreditResult") == "-1"
    good = envelope(
        '<tem:GetCredit xmlns:tem="http://tempuri.org/"><tem:userName>demo</tem:userName>'
        "<tem:password>demo</tem:password></tem:GetCredit>"
    )
    assert result(post(shared_simulator, good, "GetCredit"), "GetCreditResult") == "1000000"


def test_a_missing_value_parameter_is_its_default(shared_simulator):
    body = envelope('<Dummy xmlns="http://tempuri.org/"/>')
    assert result(post(shared_simulator, body, "Dummy"), "DummyResult") == "0"
    empty = envelope("")
    assert result(post(shared_simulator, empty, "GetCredit"), "GetCreditResult") == "-1"


@pytest.mark.parametrize(
    ("value", "clr", "detail"),
    [
        ("abc", "Int32", "The value 'abc' cannot be parsed as the type 'Int32'."),
        ("99999999999", "Int32", "The value '99999999999' cannot be parsed as the type 'Int32'."),
        ("۱۲", "Int32", "The value '۱۲' cannot be parsed as the type 'Int32'."),
        ("1_000", "Int32", "The value '1_000' cannot be parsed as the type 'Int32'."),
        ("", "Int32", "The value '' cannot be parsed as the type 'Int32'."),
    ],
)
def test_a_value_that_cannot_be_read_names_the_parameter(shared_simulator, value, clr, detail):
    body = envelope(f'<Dummy xmlns="http://tempuri.org/"><number>{value}</number></Dummy>')
    namespace, code, text = fault(post(shared_simulator, body, "Dummy"))
    assert (namespace, code) == (DISPATCHER, "DeserializationFailed")
    assert text == (
        "The formatter threw an exception while trying to deserialize the message: There was an error while trying "
        "to deserialize parameter http://tempuri.org/:number. The InnerException message was 'There was an error "
        f"deserializing the object of type System.{clr}. {detail}'.  Please see InnerException for more details."
    )


def test_a_body_that_is_not_the_actions_operation_is_an_internal_fault(simulator):
    namespace, code, text = fault(post(simulator, envelope(SEND), "GetCredit"))
    assert (namespace, code) == (DISPATCHER, "InternalServiceFault")
    assert text.startswith("The server was unable to process the request due to an internal error.")
    assert fault(post(simulator, envelope("hello" + SEND), "SendSMS"))[1] == "InternalServiceFault"
    assert sent(simulator) == 0


def test_zeep_in_strict_mode_reads_typed_values(served):
    service = strict_zeep(served["2022"]).service
    page = service.GetMessages("demo", "demo", 2, None, 1, 3)
    assert isinstance(page[0].MessageId, int) and isinstance(page[0].Flash, bool)
    assert page[0].ActionDateTime.year > 2000 and page[0].Cost is not None


# --- a SOAP client of another language --------------------------------------------------------
def test_php_soapclient_gets_typed_values_and_wcf_faults(served):
    if shutil.which("php") is None:
        pytest.skip("php (Debian's php-cli and php-soap) is not installed; make test installs it where apt-get can")
    script = Path(__file__).parent / "clients" / "php_wcf.php"
    answers = {}
    for generation in ("2022", "2020"):
        for document in ("wsdl", "singleWsdl"):
            url = f"{served[generation].url}?{document}"
            run = subprocess.run(["php", str(script), url], check=False, capture_output=True, text=True, timeout=60)
            assert run.returncode == 0, run.stderr
            answers[generation, document] = json.loads(run.stdout)
    assert answers["2022", "wsdl"] == answers["2022", "singleWsdl"]
    new, old = answers["2022", "wsdl"], answers["2020", "wsdl"]
    assert new["types"] == {"MessageId": "integer", "Flash": "boolean", "Count": "integer", "Cost": "string"}
    assert new["statuses"] == "array" and new["numbers"] == "array"
    assert old["types"] == {"MessageId": "integer", "Flash": "boolean", "Count": "integer"}
    assert new["fault"] == "s:MustUnderstand" and old["by_range"] is False and new["by_range"] is True


# --- the project's own client on an older deployment ------------------------------------------
def test_the_client_syncs_and_sends_against_the_2020_generation(tmp_path):
    from payamak_analytics import PanelClient
    from payamak_analytics.store import Store
    from payamak_analytics.sync import sync

    with Simulator(world_config(messages=400, days=3), contract="2020") as old:
        client = PanelClient("demo", "demo", wsdl=old.wsdl_url, max_retry_wait=0.05, cache_wsdl=False)
        assert not client.has("GetMessagesByDateRange") and client.has("GetMessages")
        frame = client.messages_frame("sent", limit=20)
        assert len(frame) == 20 and frame["message_id"].notna().all()
        assert client.send_sms("10002188", ["09121234567"], "سلام").rec_ids
        store = Store(tmp_path / "old.duckdb")
        summary = sync(client, store, progress=False)
        assert summary is not None and len(store.messages()) >= 20


def test_a_body_that_is_not_well_formed_fails_when_its_operation_reads_it(shared_simulator):
    """WCF reads the envelope and its header first (400 when they are broken) and the body only
    once the SOAPAction has chosen the operation."""
    truncated = f'<s:Envelope xmlns:s="{SOAP}"><s:Body><GetCredit xmlns="http://tempuri.org/">{CREDENTIALS}'.encode()
    namespace, code, text = fault(post(shared_simulator, truncated, "GetCredit"))
    assert (namespace, code) == (DISPATCHER, "DeserializationFailed")
    assert text.startswith(
        "The formatter threw an exception while trying to deserialize the message: Error in deserializing body of "
        "request message for operation 'GetCredit'. Unexpected end of file. Following elements are not closed: "
        "GetCredit, Body, Envelope. Line 1, position "
    )
    assert fault(post(shared_simulator, truncated, ""))[1] == "ActionNotSupported"
    broken_header = f'<s:Envelope xmlns:s="{SOAP}"><s:Header><a></b></s:Header><s:Body/></s:Envelope>'.encode()
    response = post(shared_simulator, broken_header, "GetCredit")
    assert response.status_code == 400 and response.content == b""


def test_an_xsi_type_the_serializer_does_not_know_is_refused(simulator):
    typed = send_with(
        '<toNumbers xmlns:enc="http://schemas.xmlsoap.org/soap/encoding/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="enc:Array">'
        f'<a:string xmlns:a="{ARRAYS}">09121234567</a:string></toNumbers>'
    )
    namespace, code, text = fault(post(simulator, typed, "SendSMS"))
    assert (namespace, code) == (DISPATCHER, "DeserializationFailed")
    assert "contains data from a type that maps to the name 'http://schemas.xmlsoap.org/soap/encoding/:Array'" in text
    own_type = typed.replace(b'xsi:type="enc:Array"', f'xsi:type="a:ArrayOfstring" xmlns:a="{ARRAYS}"'.encode())
    assert result(post(simulator, own_type, "SendSMS"), "SendSMSResult") == "0"
    assert sent(simulator) == 1


def test_newer_delivery_statuses_only_come_with_the_latest_generation(shared_simulator):
    for generation in wsdl.GENERATIONS:
        reported = {code: wsdl.contract(generation).reported_status(code) for code in range(-5, 14)}
        newer = {12, 13} & set(reported.values())
        assert newer == ({12, 13} if generation == "latest" else set()), generation
        assert all(reported[code] == code for code in range(-5, 12))
    seen = {
        int(code)
        for code in requests.get(shared_simulator.url.rsplit("/", 1)[0] + "/_sim/truth", timeout=30).json()[
            "recipients_by_status"
        ]
    }
    assert seen and not seen & {12, 13}

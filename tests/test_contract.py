"""The bundled WSDL against the real service's saved copy and SERVICE.md's tables."""

from __future__ import annotations

import pytest
import requests
from lxml import etree

from payamak_analytics import wsdl

from .conftest import REFERENCE_WSDL, strict_zeep

W = "{http://schemas.xmlsoap.org/wsdl/}"
SOAP = "{http://schemas.xmlsoap.org/wsdl/soap/}"


def operations_and_actions(document: bytes) -> dict[str, str]:
    root = etree.fromstring(document)
    binding = root.find(f"{W}binding")
    return {op.get("name"): op.find(f"{SOAP}operation").get("soapAction") for op in binding.findall(f"{W}operation")}


@pytest.mark.skipif(
    not REFERENCE_WSDL.exists(),
    reason=f"the real service's saved WSDL is not at {REFERENCE_WSDL} (CI has it beside the checkout as ../shared)",
)
def test_operations_and_soap_actions_match_the_real_service():
    ours = operations_and_actions(wsdl.document("wsdl"))
    theirs = operations_and_actions(REFERENCE_WSDL.read_bytes())
    assert ours == theirs
    assert len(ours) == 16


@pytest.mark.skipif(not REFERENCE_WSDL.exists(), reason="the real service's saved WSDL is absent")
def test_messages_port_and_service_names_match_the_real_service():
    def names(document: bytes) -> dict:
        root = etree.fromstring(document)
        return {
            "messages": sorted((m.get("name"), m.find(f"{W}part").get("element")) for m in root.findall(f"{W}message")),
            "port_type": root.find(f"{W}portType").get("name"),
            "binding": root.find(f"{W}binding").get("name"),
            "service": root.find(f"{W}service").get("name"),
            "port": root.find(f"{W}service/{W}port").get("name"),
            "imports": sorted(i.get("namespace") for i in root.iter("{http://www.w3.org/2001/XMLSchema}import")),
        }

    assert names(wsdl.document("wsdl")) == names(REFERENCE_WSDL.read_bytes())


# SERVICE.md's table: operation -> (request fields after the credentials, response fields in order)
SERVICE_MD = {
    "SendSMS": (
        ["fromNumber", "toNumbers", "messageContent", "isFlash", "recId", "status"],
        ["SendSMSResult", "recId", "status"],
    ),
    "GetCredit": ([], ["GetCreditResult"]),
    "GetDelivery": (["recId"], ["GetDeliveryResult"]),
    "GetDeilvery": (["recId"], ["GetDeilveryResult"]),
    "GetMessages": (["messageType", "fromNumbers", "index", "count"], ["GetMessagesResult"]),
    "GetMessagesByDateRange": (["messageType", "fromNumbers", "fromDate", "toDate"], ["GetMessagesByDateRangeResult"]),
    "GetInboxCount": (["isRead"], ["GetInboxCountResult"]),
    "SendBatchSms": (["fromNumber", "toNumbers", "messageContent", "isFlash"], ["SendBatchSmsResult", "batchSmsId"]),
    "GetBatchDelivery": (["batchSmsId", "index", "count"], ["GetBatchDeliveryResult", "numbers", "deliveryStatus"]),
    "GetSenderNumbers": ([], ["GetSenderNumbersResult"]),
    "SendSmsLikeToLike": (
        ["fromNumber", "toNumbers", "messageContents", "isFlash"],
        ["SendSmsLikeToLikeResult", "smsId"],
    ),
    "GetDeliveryLikeToLike": (["smsId"], ["GetDeliveryLikeToLikeResult", "numbers", "deliveryStatus"]),
    "ExtractTelecomBlacklistNumbers": (["numbers"], ["ExtractTelecomBlacklistNumbersResult", "blacklistNumbers"]),
    "NumberIsInTelecomBlacklist": (["number"], ["NumberIsInTelecomBlacklistResult"]),
    "CheckSmsContent": (["message"], ["CheckSmsContentResult"]),
}


def test_element_names_and_order_follow_service_md():
    operations = wsdl.operations()
    for name, (request, response) in SERVICE_MD.items():
        op = operations[name]
        assert [f.name for f in op.request] == ["userName", "password", *request], name
        assert [f.name for f in op.response] == response, name
    assert [f.name for f in operations["Dummy"].request] == ["number"]


def test_types_follow_service_md():
    ops = wsdl.operations()
    assert {f.name: f.type for f in ops["SendSMS"].request}["recId"] == "ArrayOflong"
    assert {f.name: f.type for f in ops["SendSMS"].request}["status"] == "base64Binary"
    assert ops["GetCredit"].response[0].type == "decimal"
    assert ops["GetDelivery"].response[0].type == "long"
    assert [f.type for f in ops["GetBatchDelivery"].response] == ["int", "ArrayOfstring", "ArrayOfint"]
    assert ops["GetMessages"].response[0].type == "ArrayOfMessageInfo"


def test_message_info_fields_are_in_datacontract_order():
    schema = etree.fromstring(wsdl.document("xsd3"))
    info = schema.find("{http://www.w3.org/2001/XMLSchema}complexType[@name='MessageInfo']")
    names = [e.get("name") for e in info.iter("{http://www.w3.org/2001/XMLSchema}element")]
    assert names == sorted(names) and len(names) == 22
    assert all(e.get("minOccurs") == "0" for e in info.iter("{http://www.w3.org/2001/XMLSchema}element"))


def test_simulator_serves_wsdl_and_schemas_like_wcf(simulator):
    document = requests.get(simulator.wsdl_url, timeout=10).content
    root = etree.fromstring(document)
    locations = [i.get("schemaLocation") for i in root.iter("{http://www.w3.org/2001/XMLSchema}import")]
    assert locations == [f"{simulator.url}?xsd=xsd{i}" for i in range(6)]
    assert root.find(f"{W}service/{W}port/{SOAP}address").get("location") == simulator.url
    for location in locations:
        schema = etree.fromstring(requests.get(location, timeout=10).content)
        assert schema.tag == "{http://www.w3.org/2001/XMLSchema}schema"
    client = strict_zeep(simulator)
    assert set(client.wsdl.bindings["{http://tempuri.org/}BasicHttpBinding_ISendService"].all()) == set(
        wsdl.operations()
    )

"""The values only the latest contract generation has, over real HTTP: a simulator serving
`latest` produces them in their shares (and is otherwise the 2022 world), one serving an older
generation never does; the client reads them, stores them and explains them in both languages."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime

import pytest

from payamak_analytics import PanelClient, analytics, codes, errors, wsdl
from payamak_analytics.client.columns import explain_enums
from payamak_analytics.dates import TEHRAN
from payamak_analytics.report import write_report
from payamak_analytics.simulator import Simulator, World, latest
from payamak_analytics.store import Store
from payamak_analytics.sync import sync

from .conftest import START, world_config

LINE = "10002188"
NUMBERS = [f"0912{i:07d}" for i in range(50)] + [f"0935{i:07d}" for i in range(50)]
OLDER = {"2022": wsdl.contract("2022"), "2020": wsdl.contract("2020")}
NEWER_ENUM_VALUES = {
    enum: set(names) - {n for n, _ in OLDER["2022"].enums[enum]}
    for enum, names in ((e, [n for n, _ in v]) for e, v in wsdl.contract("latest").enums.items())
}
PERSIAN = re.compile("[\u0600-\u06ff]")


def client_of(simulator) -> PanelClient:
    return PanelClient("demo", "demo", wsdl=simulator.wsdl_url, max_retry_wait=0.01, cache_wsdl=False)


@pytest.fixture(scope="module")
def pair():
    """The same world served as 2022 and as latest, clocks frozen at the same moment."""
    simulators = {g: Simulator(world_config(messages=2500, days=5), contract=g).start() for g in ("2022", "latest")}
    yield simulators
    for simulator in simulators.values():
        simulator.stop()


def test_latest_is_the_2022_world_named_more_finely(pair):
    old, new = (client_of(pair[g]).messages_frame("sent") for g in ("2022", "latest"))
    assert len(old) == len(new) > 0 and (old["message_id"] == new["message_id"]).all()
    differs = old["send_method"] != new["send_method"]
    assert set(old.loc[differs, "send_method"]) == {"Group"}
    assert set(new.loc[differs, "send_method"]) == {"AgeAndGender", "BirthdaySms"}
    campaigns = new[new["title"].notna()].groupby("title")["send_method"].nunique()
    assert (campaigns == 1).all()  # a campaign is sent one way, every record of it
    shares = Counter(latest.campaign_method(7, campaign) for campaign in range(4000))
    assert 400 < shares["AgeAndGender"] < 560 and 180 < shares["BirthdaySms"] < 300  # 12% and 6%
    truths = {g: pair[g].world.truth("demo", with_batches=False)["recipients_by_status"] for g in pair}
    mapped = Counter()
    for code, count in truths["latest"].items():
        mapped[str(OLDER["2022"].reported_status(int(code)))] += count
    assert dict(mapped) == truths["2022"]
    assert truths["latest"]["12"] > 0 and "12" not in truths["2022"]
    share = truths["latest"]["12"] / (truths["latest"]["12"] + truths["latest"]["2"])
    assert 0.1 < share < 0.3


def test_delivery_reports_name_the_newer_statuses_only_in_latest(make_simulator):
    simulators = {g: make_simulator(world_config(messages=50), contract=g) for g in ("2020", "2022", "latest")}
    pages = {}
    for generation, simulator in simulators.items():
        batch = client_of(simulator).send_batch_sms(LINE, NUMBERS, "hello").batch_sms_id
        simulator.world.clock.advance(90)  # out of the first minute: some wait in a queue
        queued = client_of(simulator).batch_delivery_frame(batch)["status"].tolist()
        simulator.world.clock.advance(7200)  # and two hours on: final
        final = client_of(simulator).batch_delivery_frame(batch)["status"].tolist()
        pages[generation] = queued + final
    assert pages["2020"] == pages["2022"]
    assert [OLDER["2022"].reported_status(s) for s in pages["latest"]] == pages["2022"]
    assert 13 in pages["latest"] and not {12, 13} & set(pages["2022"])


def test_a_like_to_like_send_shows_its_cost_being_calculated_only_in_latest(make_simulator):
    for generation in ("2022", "latest"):
        simulator = make_simulator(world_config(messages=50), contract=generation)
        client = client_of(simulator)
        client.send_like_to_like(LINE, NUMBERS[:2], ["code 1", "code 2"])
        client.send_batch_sms(LINE, NUMBERS[:2], "same text")
        newest = client.messages_frame("sent", limit=2)["status"].tolist()
        calculating = ["Sent", "ManyToManyCalcCost"] if generation == "latest" else ["Sent", "Sent"]
        assert newest == calculating, generation
        simulator.world.clock.advance(61)
        assert client.messages_frame("sent", limit=2)["status"].tolist() == ["Sent", "Sent"]


@pytest.mark.slow
def test_a_sync_of_latest_stores_the_newer_values_and_the_report_explains_them(tmp_path):
    config = world_config(messages=900, days=3)
    with Simulator(config, contract="latest", threads=8) as simulator:
        store = Store(tmp_path / "latest.duckdb")
        client = client_of(simulator)
        client.send_like_to_like(LINE, NUMBERS[:2], ["code 1", "code 2"])
        sync(client, store, progress=False)
    messages = store.messages("sent")
    assert set(messages["send_method"].dropna().astype(str)) & NEWER_ENUM_VALUES["SMSSendMethod"]
    assert "ManyToManyCalcCost" in set(messages["status"].astype(str))
    now = datetime.fromtimestamp(START, TEHRAN)
    recipients = analytics.recipients(store, now=now)
    campaign = recipients.loc[recipients["status"] == 12, "campaign_id"].dropna().iloc[0]  # a one-batch send's too
    english = write_report(store, tmp_path / "en", campaign=campaign, now=now).read_text(encoding="utf-8")
    persian = write_report(store, tmp_path / "fa", campaign=campaign, lang="fa", now=now).read_text(encoding="utf-8")
    assert codes.delivery_status(12).en in english and codes.delivery_status(12).fa in persian


@pytest.mark.slow
def test_a_sync_of_2020_never_meets_a_newer_value(tmp_path):
    with Simulator(world_config(messages=900, days=3), contract="2020", threads=8) as simulator:
        store = Store(tmp_path / "old.duckdb")
        sync(client_of(simulator), store, progress=False)
    statuses = set(store.deliveries()["status"].dropna().astype(int))
    assert statuses and not statuses & {12, 13}
    messages = store.messages()
    seen = set(messages["status"].dropna().astype(str)) | set(messages["message_type"].dropna().astype(str))
    assert not seen & (NEWER_ENUM_VALUES["SMSStatus"] | NEWER_ENUM_VALUES["SMSSendMethod"])
    assert messages["send_method"].isna().all()  # the 2020 MessageInfo has no SendMethod


def test_every_value_of_every_generation_is_explained_in_english_and_persian():
    for enum, values in wsdl.contract("latest").enums.items():
        for name, _ in values:
            english, persian = codes.enum_text(enum, name.upper(), "en"), codes.enum_text(enum, name, "fa")
            assert english and not PERSIAN.search(english), (enum, name)
            assert PERSIAN.search(persian), (enum, name)
    assert codes.enum_text("SMSSendMethod", "FutureMethod") == "Unknown value 'FutureMethod'"
    assert PERSIAN.search(codes.enum_text("SMSStatus", "FutureStatus", "fa"))
    for code in (12, 13):
        assert PERSIAN.search(codes.delivery_status(code).fa) and codes.delivery_status(code).name != "unknown"


def test_a_messages_frame_of_latest_explains_its_values(pair):
    frame = client_of(pair["latest"]).messages_frame("sent")
    targeted = frame[frame["send_method"] == "AgeAndGender"].head(1)
    shown = explain_enums(targeted, "fa")
    assert shown["send_method"].iloc[0] == codes.ENUM_TEXTS["SMSSendMethod"]["AgeAndGender"][1]
    assert explain_enums(targeted)["message_type"].iloc[0] == "Sent"
    assert targeted["send_method"].iloc[0] == "AgeAndGender"  # the frame itself is left as it was


def test_a_world_of_another_generation_is_refused_by_the_simulator():
    world = World(world_config(messages=50), generation="2022")
    with pytest.raises(errors.InputError, match="generation='latest'"):
        Simulator(world, contract="latest")
    with pytest.raises(errors.InputError, match="no contract generation"):
        World(world_config(messages=50), generation="2023")
    with pytest.raises(errors.InputError, match="no contract generation '2023'"):
        Simulator(world, contract="2023")

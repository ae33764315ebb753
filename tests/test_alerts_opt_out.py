"""The opt-out surge rule against the simulator: recipients of a campaign writing back لغو or 11."""

from __future__ import annotations

import random
from datetime import datetime

import pytest
import requests

from payamak_analytics import PanelClient
from payamak_analytics.alerts import alerts
from payamak_analytics.simulator import HistoryConfig, WorldConfig
from payamak_analytics.store import Store
from payamak_analytics.watch import Watch

from .conftest import START, truth

PROMO_LINE = "50001234"


def admin(simulator, method: str, path: str, **params) -> dict:
    answer = requests.request(method, f"{simulator.url.rsplit('/', 1)[0]}/_sim/{path}", params=params, timeout=30)
    answer.raise_for_status()
    return answer.json()


def campaign(client: PanelClient, rng: random.Random, text: str, batches: int = 4) -> list[int]:
    """A campaign of `batches` bulk sends of 100 from the promotional line; their batch ids."""
    ids = []
    for _ in range(batches):
        numbers = sorted({f"0912{rng.randrange(10**7):07d}" for _ in range(100)})
        ids.append(client.send_batch_sms(PROMO_LINE, numbers, text).batch_sms_id)
    return ids


@pytest.fixture
def watched(make_simulator, tmp_path):
    """A month of history with its campaigns (the account's usual opt-outs), a store and a watch."""
    config = WorldConfig(history=HistoryConfig(messages=600, days=30), start=START, clock_speed=0.0)
    simulator = make_simulator(config)
    client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url, max_retry_wait=0.05)
    store = Store(tmp_path / "watch.duckdb")
    now = lambda: datetime.fromisoformat(admin(simulator, "GET", "clock")["clock"])
    runner = Watch(client, store, every="15m", now=now)
    runner.cycle()
    return simulator, client, store, runner


@pytest.mark.slow
def test_an_opt_out_surge_after_a_campaign_is_one_alert_and_a_normal_campaign_none(watched):
    simulator, client, store, runner = watched
    rng = random.Random(4)
    normal = campaign(client, rng, "فروش ویژه امروز از ساعت ۱۸.\nلغو۱۱")
    for batch_id in normal:  # people write back, but not to opt out
        admin(simulator, "POST", "replies", batch_id=batch_id, share=0.1, text="ممنون، قیمت چنده؟")
    admin(simulator, "POST", "clock", advance=3600)
    runner.cycle()
    assert alerts(store).empty

    surge = campaign(client, rng, "حراج زمستانه! تا ۴۰٪ تخفیف فقط تا جمعه.\nلغو۱۱")
    staged = sum(admin(simulator, "POST", "replies", batch_id=b, share=0.06)["replies"] for b in surge)
    assert staged == 24  # لغو, 11, لغو۱۱, ۱۱ in turn
    for _ in range(3):
        admin(simulator, "POST", "clock", advance=1800)
        runner.cycle()
    found = alerts(store)
    assert found["kind"].tolist() == ["opt_out_surge"], found[["kind", "title"]]
    alert = found.iloc[0]
    assert alert["line"] == PROMO_LINE and "24 of 400" in alert["title"]
    received = store.sql("SELECT count(*) AS n FROM messages WHERE message_type = 'In'")["n"].iloc[0]
    assert received == truth(simulator, batches="0")["messages"]["received"]  # every reply was synced

    admin(simulator, "POST", "clock", advance=2 * 86400)  # the campaign is no longer young: the incident ends
    runner.cycle()
    surges = alerts(store).query("kind == 'opt_out_surge'")
    assert len(surges) == 1 and surges["ended_at"].notna().all()


def test_replies_are_staged_only_for_sends_that_exist(watched):
    simulator, client, *_ = watched
    base = simulator.url.rsplit("/", 1)[0]
    [batch_id] = campaign(client, random.Random(1), "Sale today. Stop: 11", batches=1)
    before = truth(simulator, batches="0")["messages"]["received"]
    for params in ({"batch_id": 1, "share": 0.5}, {"batch_id": batch_id, "share": 0}, {"batch_id": batch_id}):
        answer = requests.post(f"{base}/_sim/replies", params=params, timeout=30)
        assert answer.status_code == 400, params
    assert truth(simulator, batches="0")["messages"]["received"] == before  # nothing was staged

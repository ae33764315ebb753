"""The widgets, driven as a person drives them: set values, click buttons."""

from __future__ import annotations

import pandas as pd
import pytest

from payamak_analytics import PanelClient, analytics
from payamak_analytics.store import Store
from payamak_analytics.widgets import CampaignExplorer, SendTestMessage, SyncButton

from .conftest import truth


def sends(simulator) -> int:
    calls = truth(simulator, batches=0)["calls"]
    return sum(calls.get(op, 0) for op in ("SendSMS", "SendBatchSms", "SendSmsLikeToLike"))


@pytest.fixture
def widget(simulator):
    return SendTestMessage(
        PanelClient("demo", "demo", wsdl=simulator.wsdl_url), confirm_above=3, poll_every=0.05, polls=3
    )


def test_lines_and_credit_come_from_the_service(widget):
    assert widget.line.options == ("10002188", "50001234", "30001111")
    assert "1,000,000" in widget.credit.value


def test_a_bad_number_blocks_the_send_and_is_named(widget, simulator):
    widget.recipients.value = "09121234567, 0912-12"
    assert "0912-12" in widget.problems.value
    widget.dry_run.value = False
    widget.text.value = "hello"
    widget.send_button.click()
    assert "0912-12" in widget.result.value and "Not sent" in widget.result.value
    assert sends(simulator) == 0


def test_a_71_letter_persian_text_shows_two_parts(widget):
    widget.text.value = "س" * 71
    assert "71 characters · UCS-2 · 2 part(s)" in widget.counter.value
    widget.text.value = "Your code is 1234 ب"
    assert "makes the whole text UCS-2" in widget.counter.value


def test_dry_run_calls_nothing(widget, simulator):
    widget.recipients.value = "09121234567\n09351234567"
    widget.text.value = "hello"
    widget.send_button.click()
    assert "Nothing was sent" in widget.result.value and sends(simulator) == 0


def test_confirmation_above_the_threshold_then_a_real_send(widget, simulator):
    widget.recipients.value = ", ".join(f"0912123456{i}" for i in range(4))
    widget.text.value = "hello"
    widget.dry_run.value = False
    widget.send_button.click()
    assert "Confirm" in widget.result.value and sends(simulator) == 0
    widget.confirm_button.click()
    assert sends(simulator) == 1 and widget.result.value.count("sent") >= 4
    assert len(widget.rec_ids) == 4 and not widget.check_button.disabled
    widget.check_button.click()
    widget.follower.join(timeout=30)
    assert [set(poll.values()) for poll in widget.seen] == [{-5}] * 3  # the clock stands still: asked 3 times
    assert "Ask at least one minute after sending." in widget.result.value


def test_following_delivery_stops_once_every_status_is_final(widget, simulator):
    widget.recipients.value = "09121234567"
    widget.text.value = "hello"
    widget.dry_run.value = False
    widget.send_button.click()
    simulator.world.clock.advance(2 * 86400)  # two days later every status is final
    widget.check_button.click()
    widget.follower.join(timeout=30)
    assert len(widget.seen) == 1 and "final" in widget.result.value


def test_a_send_failure_shows_both_languages_in_the_widget(simulator):
    widget = SendTestMessage(PanelClient("nocredit", "nocredit", wsdl=simulator.wsdl_url))
    widget.recipients.value = "09121234567"
    widget.text.value = "hello"
    widget.dry_run.value = False
    widget.send_button.click()
    assert "Not enough credit" in widget.result.value and "اعتبار کافی نیست" in widget.result.value
    assert "Traceback" not in widget.result.value


def test_sync_button_and_campaign_explorer(simulator, tmp_path):
    store = Store(tmp_path / "p.duckdb")
    button = SyncButton(PanelClient("demo", "demo", wsdl=simulator.wsdl_url), store, progress=False)
    button.button.click()
    assert button.summary.value.startswith("Synced:")
    explorer = CampaignExplorer(store, export_folder=tmp_path)
    assert explorer.campaign.options == tuple(analytics.campaigns(store)["campaign"])
    assert "recipients" in explorer.message.value
    explorer.lang.value = "fa"
    explorer.export_button.click()
    assert (tmp_path / f"{explorer.campaign.value}.csv").exists()
    explorer.lines.value = ("50001234",)
    explorer.range_button.click()
    promo = analytics.delivery_report(store, by=[], lines=("50001234",))["recipients"][0]
    assert f"{promo:,} recipients" in explorer.message.value
    explorer.export_button.click()
    assert len(pd.read_csv(tmp_path / "range.csv")) >= 1

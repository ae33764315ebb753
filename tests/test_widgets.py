"""The widgets, driven as a person drives them: set values, click buttons."""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable

import pandas as pd
import pytest

from payamak_analytics import PanelClient, analytics, widgets
from payamak_analytics.simulator import FaultConfig, HistoryConfig, Simulator, WorldConfig
from payamak_analytics.store import Store
from payamak_analytics.widgets import CampaignExplorer, SendTestMessage, SyncButton

from .conftest import truth
from .hostile_server import HostileServer, forwarding


def sends(simulator) -> int:
    calls = truth(simulator, batches=0)["calls"]
    return sum(calls.get(op, 0) for op in ("SendSMS", "SendBatchSms", "SendSmsLikeToLike"))


@pytest.fixture(autouse=True)
def fresh_kernel(monkeypatch):
    """Each test is a kernel of its own: what its widgets sent is not what another test's did."""
    monkeypatch.setattr(widgets, "_SENDS", widgets._Sends())


@pytest.fixture
def widget(simulator):
    return SendTestMessage(
        PanelClient("demo", "demo", wsdl=simulator.wsdl_url), confirm_above=3, poll_every=0.05, polls=3
    )


def test_lines_and_credit_come_from_the_service(widget):
    assert [value for _, value in widget.line.options] == ["10002188", "50001234", "30001111"]
    assert "Credit: 1,000,000 SMS" in widget.credit.value  # a whole number of SMS, no ".0"


def test_the_button_says_what_a_click_does(widget):
    assert widget.send_button.description == "Dry run" and widget.send_button.button_style == "info"
    widget.recipients.value = "09121234567, 09351234567"
    widget.text.value = "س" * 71  # two parts each
    widget.dry_run.value = False
    assert widget.send_button.description == "Send 4 SMS" and widget.send_button.button_style == "danger"
    widget.dry_run.value = True
    assert widget.send_button.description == "Dry run"


def test_an_inactive_line_is_marked_and_cannot_be_chosen_to_send(widget, simulator):
    widget.line.value = "30001111"
    widget.recipients.value = "09121234567"
    widget.text.value = "hello"
    widget.dry_run.value = False
    widget.send_button.click()  # the service refuses the line (code 6)
    assert "inactive" in widget.result.value.lower()
    asked = sends(simulator)
    labels = {value: label for label, value in widget.line.options}
    assert "inactive" in labels["inactive:30001111"] and "30001111" not in labels
    assert widget.line.value != "inactive:30001111"
    widget.line.value = "inactive:30001111"
    assert widget.send_button.disabled
    widget.send_button.click()  # a click that reaches the handler anyway is refused before the service
    assert sends(simulator) == asked and "active sender line" in widget.result.value


def test_numbers_outside_the_number_plan_are_flagged_not_refused(widget):
    widget.recipients.value = "09121234567, 09061234567"
    assert "2 number(s)" in widget.problems.value and "09061234567" in widget.problems.value
    assert "number plan" in widget.problems.value


def test_a_dry_run_names_the_numbers_outside_the_number_plan(widget, simulator):
    widget.recipients.value = "09121234567, 09411234567"
    widget.text.value = "hello"
    widget.send_button.click()
    assert "Nothing was sent" in widget.result.value and "09411234567" in widget.result.value
    assert "number plan" in widget.result.value and sends(simulator) == 0


def test_text_boxes_take_the_direction_of_their_text(widget):
    assert "payamak-auto-dir" in widget.text._dom_classes and "payamak-auto-dir" in widget.recipients._dom_classes
    assert "unicode-bidi: plaintext" in widget.children[0].value


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
    widget = SendTestMessage(PanelClient("nocredit", "nocredit-pw", wsdl=simulator.wsdl_url))
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
    listed = analytics.campaigns(store)
    assert [value for _, value in explorer.campaign.options] == list(listed["campaign"])
    assert [name for name, _ in explorer.campaign.options] == list(listed["name"])
    assert "recipients" in explorer.message.value
    explorer.lang.value = "fa"
    explorer.export_button.click()
    assert (tmp_path / f"{explorer.campaign.value}.csv").exists()
    explorer.lines.value = ("50001234",)
    explorer.range_button.click()
    explorer.lang.value = "en"
    explorer.range_button.click()
    promo = analytics.delivery_report(store, by=[], lines=("50001234",))["recipients"][0]
    assert f"{promo:,} Recipients" in explorer.message.value and "Sync at least daily" in explorer.message.value
    explorer.since.value = "1300-01-01"  # Jalali, as typed in the explorer
    explorer.range_button.click()
    assert f"{promo:,} Recipients" in explorer.message.value
    explorer.export_button.click()
    assert len(pd.read_csv(tmp_path / "range.csv")) >= 1


def sends_to(simulator, number: str) -> int:
    """How often the service (the simulator's own record) sent to `number`."""
    return sum(send.numbers.count(number) for send in simulator.world.sends.values())


def slow_sends(make_simulator) -> tuple[Simulator, Simulator]:
    """(a panel, the same panel answering SendSMS after 1.5 s): a client waiting 0.7 s loses the answer."""
    healthy = make_simulator(WorldConfig(history=HistoryConfig(messages=50), clock_speed=0.0))
    return healthy, make_simulator(healthy.world, FaultConfig(slow_rate=1.0, slow_seconds=1.5, operations=("SendSMS",)))


def sent_with_its_answer_lost(wsdl: str, **options) -> SendTestMessage:
    """A widget whose send of "test unknown" went out with its answer lost (the client waits 0.7 s)."""
    widget = SendTestMessage(PanelClient("demo", "demo", wsdl=wsdl, timeout=0.7, max_retry_wait=0.05, **options))
    widget.recipients.value, widget.text.value, widget.dry_run.value = "09121234567", "test unknown", False
    widget.send_button.click()
    return widget


def test_an_unknown_outcome_locks_send_until_the_sent_messages_are_checked(make_simulator):
    healthy, slow = slow_sends(make_simulator)
    widget = sent_with_its_answer_lost(slow.wsdl_url)
    assert "may or may not have gone out" in widget.result.value
    assert "try again" not in widget.result.value.lower()
    assert widget.send_button.disabled and widget.send_button.description == "Outcome unknown"
    widget.send_button.click()  # a second click that reaches the handler anyway
    widget.confirm_button.click()
    assert sends_to(healthy, "09121234567") == 1 and "Not sent again" in widget.result.value
    widget.check_sent_button.click()
    assert "It went out" in widget.result.value and not widget.send_button.disabled


@pytest.mark.parametrize("made_again", [False, True], ids=["the same widget", "a widget made again"])
def test_a_sent_form_is_not_sent_again_until_it_changes(widget, simulator, made_again):
    widget.recipients.value, widget.text.value, widget.dry_run.value = "09121234567", "once", False
    widget.send_button.click()
    if made_again:  # the cell run again: a new widget, the same account and form
        widget = SendTestMessage(PanelClient("demo", "demo", wsdl=simulator.wsdl_url))
        widget.recipients.value, widget.text.value, widget.dry_run.value = "09121234567", "once", False
        assert widget.send_button.description == "Sent"
    assert sends_to(simulator, "09121234567") == 1 and widget.send_button.disabled
    widget.send_button.click()  # a double click's second event, handled after the first send ended
    assert sends_to(simulator, "09121234567") == 1 and "Not sent again" in widget.result.value
    widget.text.value = "once more"  # a new message: Send is free
    assert not widget.send_button.disabled
    widget.send_button.click()
    assert sends_to(simulator, "09121234567") == 2


def test_a_click_while_a_send_runs_is_ignored(make_simulator):
    healthy = make_simulator(WorldConfig(history=HistoryConfig(messages=50), clock_speed=0.0))
    slow = make_simulator(healthy.world, FaultConfig(latency_ms=800, operations=("SendSMS",)))
    widget = SendTestMessage(PanelClient("demo", "demo", wsdl=slow.wsdl_url, timeout=10))
    widget.recipients.value, widget.text.value, widget.dry_run.value = "09121234567", "one click", False
    clicks = [threading.Thread(target=widget.send_button.click) for _ in range(3)]
    for click in clicks:
        click.start()
    for click in clicks:
        click.join(timeout=30)
    assert sends_to(healthy, "09121234567") == 1


def _content(new: bytes) -> Callable[[bytes], bytes]:
    return lambda body: re.sub(rb"<a:Content>([^<]*)</a:Content>", new, body)


@pytest.mark.parametrize(
    "stored",
    {
        "a suffix the panel adds": _content("<a:Content>\\1\nلغو۱۱</a:Content>".encode()),
        "no text": _content(b'<a:Content i:nil="true"/>'),
        "no count, no text": lambda body: _content(b'<a:Content i:nil="true"/>')(
            re.sub(rb"<a:Count>\d+</a:Count>", b'<a:Count i:nil="true"/>', body)
        ),
    }.items(),
    ids=lambda item: item[0],
)
def test_a_check_that_cannot_rule_out_the_send_keeps_send_locked(make_simulator, stored):
    """A record the panel keeps with another text (or without text or count) may be the send:
    the check does not call it "did not go out", and Send stays locked."""
    healthy, slow = slow_sends(make_simulator)
    keep = stored[1]
    with HostileServer(
        {"/svc": forwarding(slow, lambda op, body: keep(body) if op == "GetMessages" else body)}
    ) as panel:
        widget = sent_with_its_answer_lost("bundled", endpoint=panel.url("svc"))
        widget.check_sent_button.click()
        assert "did not go out" not in widget.result.value and widget.send_button.disabled
        widget.send_button.click()
    assert sends_to(healthy, "09121234567") == 1


@pytest.mark.parametrize(
    "change",
    [
        lambda widget: setattr(widget.recipients, "value", ", ".join(f"0935123456{i}" for i in range(9))),
        lambda widget: setattr(widget.text, "value", "another text"),
        lambda widget: setattr(widget.flash, "value", True),
    ],
    ids=["numbers", "text", "flash"],
)
def test_a_confirmation_sends_only_what_it_asked_about(widget, simulator, change):
    """ "Yes, send" confirms the send the question described: a form changed since asks again."""
    widget.recipients.value = ", ".join(f"0912123456{i}" for i in range(4))
    widget.text.value, widget.dry_run.value = "hello", False
    widget.send_button.click()
    assert "Confirm" in widget.result.value and sends(simulator) == 0
    change(widget)
    widget.confirm_button.click()
    assert sends(simulator) == 0


def test_an_unexpected_error_shown_in_a_widget_is_scrubbed_of_the_password(simulator):
    """Whatever raised it, an error the widget shows passes the scrub: a notebook's output is a file."""
    from payamak_analytics.widgets import _error_html

    PanelClient("demo", "Widget-Secret-9", wsdl=simulator.wsdl_url)  # its password is known to the process
    shown = _error_html(KeyError("login Widget-Secret-9 refused"))
    assert "Widget-Secret-9" not in shown and "***" in shown


def test_a_form_edited_and_put_back_after_an_unknown_send_keeps_send_locked(make_simulator):
    """A careless edit undone (a character typed and deleted) leaves the same message: the send
    whose outcome is unknown is not offered again until the sent messages rule it out."""
    healthy, slow = slow_sends(make_simulator)
    widget = sent_with_its_answer_lost(slow.wsdl_url)
    widget.text.value = "test unknown!"
    widget.text.value = "test unknown"
    assert widget.send_button.disabled
    widget.send_button.click()
    assert sends_to(healthy, "09121234567") == 1


def test_a_widget_made_again_knows_the_send_whose_outcome_is_unknown(make_simulator):
    """The cell run again after a send that may have gone out: the new widget, on the same
    account and form, keeps Send locked until the sent messages are checked."""
    healthy, slow = slow_sends(make_simulator)
    sent_with_its_answer_lost(slow.wsdl_url)
    again = SendTestMessage(PanelClient("demo", "demo", wsdl=slow.wsdl_url, timeout=0.7, max_retry_wait=0.05))
    again.recipients.value, again.text.value, again.dry_run.value = "09121234567", "test unknown", False
    assert again.send_button.disabled and again.send_button.description == "Outcome unknown"
    again.send_button.click()  # a click that reaches the handler anyway
    assert sends_to(healthy, "09121234567") == 1 and "Not sent again" in again.result.value
    again.check_sent_button.click()
    assert "It went out" in again.result.value and not again.send_button.disabled


def test_two_widgets_clicked_at_once_send_the_form_once(make_simulator):
    healthy = make_simulator(WorldConfig(history=HistoryConfig(messages=50), clock_speed=0.0))
    slow = make_simulator(healthy.world, FaultConfig(latency_ms=800, operations=("SendSMS",)))
    forms = [SendTestMessage(PanelClient("demo", "demo", wsdl=slow.wsdl_url, timeout=10)) for _ in range(3)]
    for form in forms:
        form.recipients.value, form.text.value, form.dry_run.value = "09121234567", "one of three", False
    clicks = [threading.Thread(target=form.send_button.click) for form in forms]
    for click in clicks:
        click.start()
    for click in clicks:
        click.join(timeout=30)
    assert sends_to(healthy, "09121234567") == 1
    assert sum("Not sent again" in form.result.value for form in forms) == 2


def test_following_an_earlier_send_does_not_unlock_a_later_one_whose_outcome_is_unknown(simulator):
    """Follow delivery follows the last send that went out, and frees that form only: a later
    send whose answer was lost stays locked until the sent messages are checked."""
    answers = itertools.count(1)
    lose_the_second = lambda op, body: b"lost" if op == "SendSMS" and next(answers) == 2 else body
    with HostileServer({"/svc": forwarding(simulator, lose_the_second)}) as panel:
        widget = SendTestMessage(
            PanelClient("demo", "demo", wsdl="bundled", endpoint=panel.url("svc")), poll_every=0.05, polls=2
        )
        widget.recipients.value, widget.text.value, widget.dry_run.value = "09121234567", "first", False
        widget.send_button.click()
        widget.text.value = "second"
        widget.send_button.click()
        assert "may or may not have gone out" in widget.result.value
        widget.check_button.click()  # follows the first send's recipients
        widget.follower.join(timeout=30)
        assert widget.send_button.disabled
        widget.send_button.click()
    assert sends_to(simulator, "09121234567") == 2


def test_the_same_numbers_written_otherwise_or_in_another_order_are_the_same_message(simulator):
    first = SendTestMessage(PanelClient("demo", "demo", wsdl=simulator.wsdl_url))
    first.recipients.value, first.text.value, first.dry_run.value = "09121234567, 09351234567", "once", False
    first.send_button.click()
    again = SendTestMessage(PanelClient("demo", "demo", wsdl=simulator.wsdl_url))
    again.recipients.value, again.text.value, again.dry_run.value = "+98 935 123 4567\n۰۹۱۲۱۲۳۴۵۶۷", "once", False
    assert again.send_button.disabled and again.send_button.description == "Sent"
    again.send_button.click()  # a click that reaches the handler anyway
    assert sends_to(simulator, "09121234567") == 1 and "Not sent again" in again.result.value

"""The sinks against real local receivers: a webhook that hangs or fails never holds a cycle, and
an alert it could not take is kept and delivered later, once."""

from __future__ import annotations

import base64
import json
import logging
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from payamak_analytics.alerts import Alert, Notice
from payamak_analytics.dates import TEHRAN
from payamak_analytics.errors import AlertDeliveryError, InputError
from payamak_analytics.sinks import Dispatcher, WebhookSink
from payamak_analytics.store import Store

SEEN = datetime(2025, 11, 24, 10, 15, tzinfo=TEHRAN)


class Hook:
    """A webhook receiver on loopback whose answers the test scripts: a status per request
    (the last one repeats), optionally holding each request until `release` is set."""

    def __init__(self, statuses=(204,), hold: bool = False):
        self.statuses, self.hold = list(statuses), hold
        self.release, self.arrived = threading.Event(), threading.Event()
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                hook.arrived.set()
                if hook.hold:
                    hook.release.wait(30)
                status = hook.statuses.pop(0) if len(hook.statuses) > 1 else hook.statuses[0]
                if status < 300:
                    hook.bodies.append(body)
                    hook.headers.append(dict(self.headers))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, login: str = "") -> str:
        return f"http://{login}127.0.0.1:{self.port}/hook"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()


@pytest.fixture
def hooks():
    made: list[Hook] = []

    def make(*args, **kwargs) -> Hook:
        made.append(Hook(*args, **kwargs))
        return made[-1]

    yield make
    for hook in made:
        hook.close()


def notice(alert_id: int, event: str = "raised") -> Notice:
    alert = Alert(
        f"delivery/operator=MCI#{alert_id}",
        "delivery_drop",
        "critical",
        "Delivery rate dropped on operator MCI: 45% vs 93%",
        "افت نرخ تحویل در اپراتور MCI",
        {"window": {"count": 45, "of": 100}},
        operator="MCI",
        alert_id=alert_id,
        first_seen=SEEN,
        last_seen=SEEN,
    )
    return Notice(event, alert)


def test_a_hanging_webhook_does_not_hold_the_cycle_and_its_alert_arrives_once(hooks, tmp_path):
    hook = hooks(hold=True)
    store = Store(tmp_path / "s.duckdb")
    dispatcher = Dispatcher(store, [WebhookSink(hook.url(), timeout=60)], budget=0.5)
    assert dispatcher.dispatch([notice(1)]) == 1  # returned while the receiver still holds the request
    assert hook.arrived.wait(30) and not hook.release.is_set() and hook.bodies == []
    assert dispatcher.dispatch([notice(2)]) == 2  # the sink is still busy: nothing is sent beside it
    hook.release.set()
    for _ in range(20):
        if dispatcher.dispatch([]) == 0:
            break
    assert [(b["alert_id"], b["event"]) for b in hook.bodies] == [(1, "raised"), (2, "raised")]
    assert [h["Idempotency-Key"] for h in hook.headers] == ["payamak-alert-1-raised", "payamak-alert-2-raised"]
    assert dispatcher.dispatch([notice(1)]) == 0 and len(hook.bodies) == 2  # never twice
    outbox = store.read_outbox()
    assert list(outbox["state"]) == ["delivered", "delivered"]


def test_a_stop_ends_the_wait_for_a_hanging_webhook(hooks, tmp_path):
    hook = hooks(hold=True)
    dispatcher = Dispatcher(Store(tmp_path / "s.duckdb"), [WebhookSink(hook.url(), timeout=600)], budget=600)
    assert dispatcher.dispatch([notice(1)], stop=hook.arrived.is_set) == 1  # not the 600 s budget
    assert not hook.release.is_set() and hook.bodies == []


def test_a_failing_webhook_keeps_the_alert_for_the_next_cycle_and_the_next_process(hooks, tmp_path):
    hook = hooks(statuses=(500, 500, 500, 503, 204))
    store = Store(tmp_path / "s.duckdb")
    first = Dispatcher(store, [WebhookSink(hook.url())], budget=0.5)
    assert first.dispatch([notice(1), notice(1, "ended")]) == 2  # kept, in order
    assert hook.bodies == []
    again = Dispatcher(store, [WebhookSink(hook.url())], budget=5)  # a new process on the same store
    while again.dispatch([]) and len(store.read_outbox().query("attempts > 0")) < 10:
        pass
    assert [(b["alert_id"], b["event"]) for b in hook.bodies] == [(1, "raised"), (1, "ended")]
    assert again.dispatch([notice(1)]) == 0 and len(hook.bodies) == 2


def test_a_webhook_refusing_for_good_is_recorded_not_retried(hooks, tmp_path):
    hook = hooks(statuses=(404,))
    store = Store(tmp_path / "s.duckdb")
    dispatcher = Dispatcher(store, [WebhookSink(hook.url())], budget=5)
    assert dispatcher.dispatch([notice(1)]) == 0
    outbox = store.read_outbox()
    assert outbox["state"].tolist() == ["refused"] and "HTTP 404" in outbox["last_error"].iloc[0]
    assert dispatcher.dispatch([]) == 0 and store.read_outbox()["attempts"].tolist() == [1]


def test_one_sink_down_does_not_hold_the_others(hooks, tmp_path):
    dead, alive = hooks(hold=True), hooks()
    store = Store(tmp_path / "s.duckdb")
    sinks = [WebhookSink(dead.url(), timeout=60), WebhookSink(alive.url())]
    assert Dispatcher(store, sinks, budget=1).dispatch([notice(1)]) == 1
    assert [b["alert_id"] for b in alive.bodies] == [1]


def test_a_password_in_the_webhook_url_is_used_and_never_shown(hooks, tmp_path, caplog):
    hook = hooks(statuses=(500,))
    store = Store(tmp_path / "s.duckdb")
    sink = WebhookSink(hook.url("ops:s3cret-pw@"))
    with caplog.at_level(logging.DEBUG):
        assert Dispatcher(store, [sink], budget=0.5).dispatch([notice(1)]) == 1
        with pytest.raises(AlertDeliveryError) as raised:
            sink.send(notice(1))
    assert "s3cret" not in caplog.text and "s3cret" not in repr(sink) and "s3cret" not in sink.name
    error = raised.value
    for part in (error, error.__context__, error.__cause__):
        assert "s3cret" not in repr(part) and "s3cret" not in str(part)
    assert "s3cret" not in store.sql("SELECT * FROM alert_outbox").to_string()
    hook.statuses = [204]
    assert sink.send(notice(2)) is None
    login = hook.headers[-1]["Authorization"].split()[1]
    assert base64.b64decode(login).decode() == "ops:s3cret-pw"  # the receiver gets its login
    with pytest.raises(InputError) as refused:
        WebhookSink("ftp://ops:s3cret-pw@example.com/hook")
    assert "s3cret" not in str(refused.value)


def test_a_token_in_the_webhook_path_or_query_is_never_logged(hooks, caplog):
    hook = hooks(statuses=(204,))
    sink = WebhookSink(hook.url() + "/T0KEN-in-path-123?token=Q-s3cret-456")
    with caplog.at_level(logging.DEBUG):
        sink.send(notice(1))
    assert hook.headers  # it was delivered
    assert "T0KEN" not in caplog.text and "Q-s3cret" not in caplog.text
    assert "T0KEN" not in repr(sink) and "Q-s3cret" not in sink.name


@pytest.mark.parametrize("url", ["hooks.example.com/x", "http://", "http://host:port/x", "mailto:a@b.c", ""])
def test_bad_webhook_urls_are_refused(url):
    with pytest.raises(InputError, match="http"):
        WebhookSink(url)


@pytest.mark.parametrize("budget", [0, -1, float("nan"), float("inf")])
def test_a_bad_budget_is_refused(budget, tmp_path):
    with pytest.raises(InputError):
        Dispatcher(Store(tmp_path / "s.duckdb"), [], budget=budget)

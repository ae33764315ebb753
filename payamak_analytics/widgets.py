"""ipywidgets for JupyterLab: send a test message safely, sync with a button, explore a campaign.

Every mistake a person makes at the keyboard (a wrong number, a text that silently became three
parts, no line chosen) is shown inside the widget before anything is sent; errors from the
service appear inside the widget too, in English and Persian, never as a traceback.
"""

from __future__ import annotations

import html
import threading
from pathlib import Path

import ipywidgets as w
import pandas as pd
from IPython.display import HTML, display

from . import analytics, charts, i18n, phone
from . import text as sms_text
from .campaign import LOOKBACK_MARGIN, PLANNED, UNKNOWN, plain, send_outcome
from .client import PanelClient
from .client.safety import scrub
from .dates import TEHRAN, window
from .errors import PayamakError
from .store import Store
from .sync import sync

# Text typed into the boxes takes the direction of its first strong letter, paragraph by
# paragraph, as dir="auto" does: a Persian text reads right to left, a Latin one left to right.
AUTO_DIRECTION = w.HTML(
    "<style>.payamak-auto-dir textarea, .payamak-auto-dir input { unicode-bidi: plaintext; text-align: start; }</style>"
)
INACTIVE_LINE = 6  # the service's answer to a send from an inactive line
NOT_SENT_AGAIN = (
    '<div style="color:#b00">Not sent again: this form was just sent (or may have been, or is being sent). '
    "Change it, or check its outcome first.</div>"
)
UNKNOWN_OUTCOME = (
    '<div style="color:#b00">The send may or may not have gone out: no answer proves either. Do not send it '
    "again before you check: click Check sent messages (or change the form to send something else).</div>"
    '<div dir="rtl" style="color:#b00">معلوم نیست پیامک ارسال شده یا نه؛ پیش از ارسال دوباره، پیامک های ارسالی را '
    "بررسی کنید</div>"
)


def _auto_direction(widget: w.Widget) -> w.Widget:
    widget.add_class("payamak-auto-dir")
    return widget


def _error_html(error: Exception) -> str:
    if isinstance(error, PayamakError):
        code = f" (code {error.code})" if error.code is not None else ""
        return (
            f'<div style="color:#b00">{html.escape(error.message_en)}{code}</div>'
            f'<div dir="rtl" style="color:#b00">{html.escape(error.message_fa)}</div>'
        )
    return f'<div style="color:#b00">Something went wrong: {html.escape(scrub(str(error)))}</div>'


def _warning_html(warning: str) -> str:
    """A plan's warning (numbers outside the number plan) in amber, or nothing."""
    return f'<div style="color:#b60">{html.escape(warning)}</div>' if warning else ""


CHECKED = 200  # newest sent messages of the line an outcome check reads
HELD_LABELS = {"sending": "Sending", "sent": "Sent", "unknown": "Outcome unknown"}


class _Sends:
    """The messages this kernel's widgets sent, or may have sent, by account and form. A widget
    made again (its cell run twice, or a second one beside it) finds them, so Send stays locked
    for such a form whichever widget sent it. A form is claimed before its send: two widgets
    cannot both send it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[tuple, tuple[str, pd.Timestamp]] = {}  # form -> (why, when its send left)

    def held(self, form: tuple) -> tuple[str, pd.Timestamp] | None:
        with self._lock:
            return self._held.get(form)

    def claim(self, form: tuple) -> bool:
        """Whether `form` was free; it is then held as "sending" until `settle`."""
        with self._lock:
            if form in self._held:
                return False
            self._held[form] = ("sending", pd.Timestamp.now(tz=TEHRAN))
            return True

    def settle(self, form: tuple, outcome: str | None) -> None:
        """ "sent" or "unknown" keep the form held; None frees it."""
        with self._lock:
            held = self._held.pop(form, None)
            if outcome is not None and held is not None:
                self._held[form] = (outcome, held[1])


_SENDS = _Sends()


def _sent_or_not(recent: pd.DataFrame, numbers: list[str], text: str, sent_at: pd.Timestamp | None) -> tuple[str, bool]:
    """(what the sent messages tell of a send of `text` to `numbers`, whether that settles it). A
    record with this text proves it went out; one that may be it though its text reads otherwise
    (a panel may add a suffix or convert letters), or has no text or count, leaves it unknown; so
    do records that do not reach back to the send. Only then did it not go out."""
    counted = recent["count"].isna() | (recent["count"] == len(numbers)).fillna(True).astype(bool)
    receivers = recent["receiver"].map(lambda r: phone.normalize_many([r])[0][:1], na_action="ignore")
    ours = receivers.map(lambda r: not r or r[0] in numbers, na_action="ignore").fillna(True).astype(bool)
    maybe = recent[counted & ours]
    same = maybe[maybe["content"].map(lambda c: plain(c) == plain(text), na_action="ignore").fillna(False).astype(bool)]
    if not same.empty:
        records = ", ".join(f"{m} at {t:%Y-%m-%d %H:%M}" for m, t in same[["message_id", "action_datetime"]].values)
        return f"Sent messages with this text and this many recipients: {html.escape(records)}. It went out.", True
    if not maybe.empty:
        records = ", ".join(str(m) for m in maybe["message_id"].head(5))
        advice = (
            f"Sent message(s) {html.escape(records)} may be this send (as many recipients, the text as the panel "
            "keeps it not the same or not given): check them in the panel before sending again."
        )
        return advice, False
    oldest = recent["action_datetime"].min()
    if len(recent) >= CHECKED and not (sent_at is not None and pd.notna(oldest) and oldest < sent_at - LOOKBACK_MARGIN):
        return f"The newest {CHECKED} sent messages do not reach back to this send: check the panel.", False
    return "No sent message on this line has this text and this many recipients: it did not go out.", True


class SendTestMessage(w.VBox):
    """Send a test message to a few numbers. Dry run is on until you turn it off; above
    `confirm_above` recipients a send asks for confirmation first.

    A form that was sent, or whose send may have gone out, cannot be sent again (Send is locked,
    and a click that reaches the handler anyway is refused) while the form describes it (an edit
    put back is the same message), until its outcome is checked; a click while a send runs is
    ignored. This holds across widgets of the same kernel and account: a cell run again makes a
    widget that knows what the last one sent."""

    def __init__(
        self,
        client: PanelClient,
        *,
        lines: list[str] | None = None,
        inactive_lines: tuple[str, ...] = (),
        confirm_above: int = 5,
        poll_every: float = 20.0,
        polls: int = 30,
    ):
        self.client = client
        self.confirm_above = confirm_above
        self.poll_every, self.polls = poll_every, polls
        self.rec_ids: list[int] = []
        self.asked: tuple | None = None  # the send a confirmation question is about: (line, numbers, text, flash)
        self.last_form: tuple | None = None  # the form of the last send that went out (see `_form`)
        self.sending = threading.Lock()  # held while a send runs
        self.follower: threading.Thread | None = None
        self.stop_following = threading.Event()  # set it to end a follow before its last poll
        self.seen: list[dict[int, int]] = []  # the statuses of each poll, rec id -> code
        self.all_lines = self._lines(lines)
        self.inactive_lines = set(inactive_lines)  # given, or learnt from the service's refusal (code 6)
        self.line = w.Dropdown(description="Line")
        self._offer_lines()
        self.recipients = _auto_direction(
            w.Textarea(description="To", placeholder="09121234567, +98 935 ...", layout=w.Layout(width="420px"))
        )
        self.problems = w.HTML()
        self.text = _auto_direction(w.Textarea(description="Text", layout=w.Layout(width="420px", height="90px")))
        self.counter = w.HTML()
        self.flash = w.Checkbox(description="Flash", value=False)
        self.dry_run = w.Checkbox(description="Dry run (send nothing)", value=True)
        self.credit = w.HTML()
        self.send_button = w.Button(description="Send", button_style="primary", icon="paper-plane")
        self.confirm_button = w.Button(description="Yes, send", button_style="warning", layout=w.Layout(display="none"))
        self.check_button = w.Button(description="Follow delivery", disabled=True)
        self.check_sent_button = w.Button(description="Check sent messages", layout=w.Layout(display="none"))
        self.result = w.HTML()
        self.recipients.observe(self._check_numbers, "value")
        self.text.observe(self._count, "value")
        for control in (self.recipients, self.text, self.dry_run, self.line, self.flash):
            control.observe(self._form_changed, "value")
            control.observe(self._label_button, "value")
        self.send_button.on_click(self._send_clicked)
        self.confirm_button.on_click(lambda _: self._send(confirmed=True))
        self.check_button.on_click(self._check_delivery)
        self.check_sent_button.on_click(self._check_sent)
        self._show_credit()
        self._count()
        self._label_button()
        super().__init__(
            [
                AUTO_DIRECTION,
                self.line,
                self.recipients,
                self.problems,
                self.text,
                self.counter,
                w.HBox([self.flash, self.dry_run]),
                self.credit,
                w.HBox([self.send_button, self.confirm_button, self.check_button, self.check_sent_button]),
                self.result,
            ]
        )

    def _lines(self, lines: list[str] | None) -> list[str]:
        if lines:
            return list(lines)
        try:
            return self.client.get_sender_numbers() if self.client.has("GetSenderNumbers") else []
        except PayamakError:
            return []

    def _offer_lines(self) -> None:
        """Active lines to choose from; inactive ones listed, marked, and never the chosen one."""
        active = [(line, line) for line in self.all_lines if line not in self.inactive_lines]
        inactive = [
            (f"{line} (inactive: cannot send)", f"inactive:{line}")
            for line in self.all_lines
            if line in self.inactive_lines
        ]
        self.line.options = active + inactive
        self.line.value = active[0][1] if active else None

    def _sender(self) -> str | None:
        """The chosen line, or None when an inactive one is chosen."""
        value = self.line.value
        return None if not value or value.startswith("inactive:") else value

    def _label_button(self, _=None) -> None:
        """The button says what a click will do: "Dry run", or "Send N SMS" in red when it really sends."""
        if self.dry_run.value:
            self.send_button.description, self.send_button.button_style = "Dry run", "info"
            self.send_button.icon = "eye"
        else:
            valid, _ = self._numbers()
            messages = sms_text.analyze(self.text.value).parts * len(valid)
            self.send_button.description = f"Send {messages:,} SMS"
            self.send_button.button_style, self.send_button.icon = "danger", "paper-plane"
        held = self._held()
        if held:
            self.send_button.description = HELD_LABELS[held]
        self.send_button.disabled = self._sender() is None or held is not None

    def _form(self) -> tuple:
        """The message the form describes (dry run aside), and the account it would go from:
        user name, service, line, numbers, text, flash. The numbers are a set: the same ones in
        another order (the cell run again with the list rearranged) are the same message."""
        account = (self.client.username, self.client.endpoint)
        return (*account, self._sender(), tuple(sorted(self._numbers()[0])), self.text.value, self.flash.value)

    def _held(self) -> str | None:
        """Why Send is locked: this message is being sent, was sent, or may have gone out (an edit
        put back is the same message); None when it is another message."""
        held = _SENDS.held(self._form())
        return held[0] if held else None

    def _form_changed(self, _=None) -> None:
        """Another message may be sent; the check of an unknown send is offered while it is on the form."""
        self.check_sent_button.layout.display = None if self._held() == "unknown" else "none"

    def _unlock(self, form: tuple) -> None:
        """The outcome of the send of `form` is known: it may be sent again."""
        _SENDS.settle(form, None)
        self.check_sent_button.layout.display = "none"

    def _show_credit(self) -> None:
        try:
            self.credit.value = f"Credit: {int(self.client.get_credit()):,} SMS"
        except PayamakError as error:
            self.credit.value = _error_html(error)

    def _numbers(self) -> tuple[list[str], list[str]]:
        raws = [n for n in self.recipients.value.replace(",", "\n").replace(";", "\n").splitlines() if n.strip()]
        return phone.normalize_many(raws)

    def _check_numbers(self, _=None) -> None:
        valid, invalid = self._numbers()
        bad = (
            f' · <span style="color:#b00">not mobile numbers: {html.escape(", ".join(invalid))}</span>'
            if invalid
            else ""
        )
        unallocated = phone.unallocated(valid)
        odd = (
            f' · <span style="color:#b60">not in the number plan as libphonenumber knows it (check them; they '
            f"will still be sent): {html.escape(', '.join(unallocated))}</span>"
            if unallocated
            else ""
        )
        self.problems.value = f"{len(valid)} number(s){bad}{odd}"

    def _count(self, _=None) -> None:
        info = sms_text.analyze(self.text.value)
        message = f"{info.characters} characters · {info.encoding} · {info.parts} part(s)"
        valid, _ = self._numbers()
        if valid:
            message += f" · about {info.parts * len(valid)} SMS"
        non_gsm = [ch for ch in self.text.value if not sms_text.is_gsm7(ch)]
        if info.encoding == "UCS-2" and 0 < len(non_gsm) <= 3 and len(self.text.value) > len(non_gsm):
            message += (
                f' · <b style="color:#b60">{html.escape("".join(non_gsm))} makes the whole text UCS-2 '
                "(70 characters a part instead of 160)</b>"
            )
        self.counter.value = message

    def _send_clicked(self, _=None) -> None:
        self._send(confirmed=False)

    def _send(self, confirmed: bool) -> None:
        """One send at a time; a click that arrives while one runs, or after this form was sent
        (a double click's second event comes after the first send ends), sends nothing."""
        if not self.sending.acquire(blocking=False):
            return
        try:
            if self._held() is not None:
                self.result.value += NOT_SENT_AGAIN
                return
            self._send_form(confirmed)
        finally:
            self.sending.release()
            self._label_button()

    def _send_form(self, confirmed: bool) -> None:
        self.confirm_button.layout.display = "none"
        self.send_button.disabled = True
        try:
            valid, invalid = self._numbers()
            if invalid:
                self.result.value = (
                    f'<div style="color:#b00">Not sent: fix these numbers first: '
                    f"{html.escape(', '.join(invalid))}</div>"
                )
                return
            if self._sender() is None:
                self.result.value = '<div style="color:#b00">Not sent: choose an active sender line.</div>'
                return
            plan = self.client.plan_send(self._sender(), valid, self.text.value)
            if self.dry_run.value:
                self.result.value = (
                    f"Dry run: would send {plan.text_info.parts} part(s) to {len(plan.numbers)} "
                    f"number(s) from {plan.from_number} ({plan.messages} SMS). Nothing was sent."
                    + _warning_html(plan.warning)
                )
                return
            flash = self.flash.value
            asked = (plan.from_number, tuple(plan.numbers), plan.text, flash)
            if len(plan.numbers) > self.confirm_above and (not confirmed or asked != self.asked):
                self.asked = asked  # "Yes, send" confirms this send only: a form changed since is asked about again
                question = f"Send to {len(plan.numbers)} numbers? Confirm to go on."
                self.result.value = question + _warning_html(plan.warning)
                self.confirm_button.layout.display = None
                return
        except Exception as error:  # shown in the widget, never as a traceback; nothing left
            self.result.value = _error_html(error)
            return
        self.asked = None
        self._send_plan(plan, flash)

    def _send_plan(self, plan, flash: bool) -> None:
        """The one call that may send: from here on, a failure is unknown unless it proves otherwise."""
        form = self._form()
        if not _SENDS.claim(form):
            self.result.value = NOT_SENT_AGAIN
            return
        try:
            sent = self.client.send_sms(plan.from_number, plan.numbers, plan.text, flash=flash)
        except Exception as error:  # shown in the widget, never as a traceback
            outcome = send_outcome(error)
            _SENDS.settle(form, "unknown" if outcome == UNKNOWN else None)
            self._show_failure(error, outcome)
            return
        except BaseException:  # an interrupt while the send ran: it may have gone out
            _SENDS.settle(form, "unknown")
            raise
        _SENDS.settle(form, "sent")
        self.last_form = form  # with its rec ids: following them settles this form, not a later unknown one
        self.rec_ids = [r.rec_id for r in sent.recipients if r.rec_id and r.sent is not False]
        rows = "".join(f"<tr><td>{r.number}</td><td>{r.rec_id}</td><td>{r.status}</td></tr>" for r in sent.recipients)
        self.result.value = f"<table><tr><th>number</th><th>rec id</th><th></th></tr>{rows}</table>"
        self.check_button.disabled = not self.rec_ids
        self._show_credit()

    def _show_failure(self, error: Exception, outcome: str) -> None:
        if outcome == UNKNOWN:
            self.result.value = UNKNOWN_OUTCOME
            self.check_sent_button.layout.display = None
            return
        self.result.value = _error_html(error)
        if outcome != PLANNED and error.code == INACTIVE_LINE and self._sender():
            self.inactive_lines.add(self._sender())
            self._offer_lines()

    def _check_sent(self, _=None) -> None:
        """After an unknown outcome: the line's newest sent messages. Send is free once they tell
        whether it went out; while a record may be it, or they do not reach back to it, it stays locked."""
        form, valid = self._form(), self._numbers()[0]
        held = _SENDS.held(form)
        try:
            recent = self.client.messages_frame("sent", [self._sender()], limit=CHECKED)
        except Exception as error:  # shown in the widget, never as a traceback; Send stays locked
            self.result.value = UNKNOWN_OUTCOME + _error_html(error)
            return
        found, settled = _sent_or_not(recent, valid, self.text.value, held[1] if held else None)
        if not settled:
            self.result.value = UNKNOWN_OUTCOME + f"<div>{found}</div>"
            return
        self.result.value = f"<div>{found} Send is unlocked.</div>"
        self._unlock(form)
        self._label_button()

    def _check_delivery(self, _=None) -> None:
        """Poll GetDelivery in the background until every status is final (or `polls` polls);
        the outcome is then known, so Send is free again."""
        if self.follower is not None and self.follower.is_alive():
            return
        self._unlock(self.last_form)
        self._label_button()
        self.seen = []
        self.stop_following.clear()
        self.follower = threading.Thread(target=self._follow, args=(list(self.rec_ids),), daemon=True)
        self.follower.start()

    def _follow(self, rec_ids: list[int]) -> None:
        for poll in range(self.polls):
            try:
                statuses = {rec_id: self.client.get_delivery(rec_id) for rec_id in rec_ids}
            except Exception as error:
                self.result.value = _error_html(error)
                return
            self.seen.append({rec_id: status.code for rec_id, status in statuses.items()})
            rows = "".join(
                f"<tr><td>{rec_id}</td><td>{s.code}</td><td>{html.escape(s.en)}</td>"
                f'<td dir="rtl">{html.escape(s.fa)}</td></tr>'
                for rec_id, s in statuses.items()
            )
            done = all(s.final for s in statuses.values())
            state = "final" if done else f"poll {poll + 1}, next in {self.poll_every:g} s"
            self.result.value = (
                f"<table><tr><th>rec id</th><th>status</th><th></th><th></th></tr>{rows}</table><div>{state}</div>"
            )
            if done or self.stop_following.wait(self.poll_every):
                return


class SyncButton(w.VBox):
    """Bring the store up to date, with progress bars inside the notebook."""

    def __init__(self, client: PanelClient, store: Store, **sync_options):
        self.client, self.store, self.sync_options = client, store, sync_options
        self.button = w.Button(description="Sync", icon="refresh", button_style="primary")
        self.output = w.Output()
        self.summary = w.HTML()
        self.button.on_click(self._run)
        super().__init__([self.button, self.output, self.summary])

    def _run(self, _=None) -> None:
        self.button.disabled = True
        try:
            with self.output:
                result = sync(self.client, self.store, **self.sync_options)
            self.summary.value = html.escape(f"Synced: {result}")
        except Exception as error:
            self.summary.value = _error_html(error)
        finally:
            self.button.disabled = False


class CampaignExplorer(w.VBox):
    """Pick a campaign, or a date range and lines; see the post-mortem or the delivery report as
    tables and charts, in Persian or English, Jalali or Gregorian; export what is shown as CSV.
    Dates are typed as the toolkit reads them everywhere: 1404-08-01, 2025-10-23, 7d, yesterday."""

    def __init__(self, store: Store, *, export_folder: str | Path = "."):
        self.store, self.export_folder = store, Path(export_folder)
        self.shown: tuple[str, object] | None = None  # (file stem, table or post-mortem) for the export
        listed = analytics.campaigns(store)
        self.campaign = w.Dropdown(
            description="Campaign",
            options=list(zip(listed["name"], listed["campaign"])),
            layout=w.Layout(width="480px"),
        )
        self.since = _auto_direction(w.Text(description="From"))
        self.until = _auto_direction(w.Text(description="Until"))
        lines = analytics.lines(store)
        self.lines = w.SelectMultiple(description="Lines", options=lines, rows=min(len(lines), 4) or 1)
        self.range_button = w.Button(description="Show range")
        self.lang = w.ToggleButtons(options=[("English", "en"), ("فارسی", "fa")], value="en")
        self.calendar = w.ToggleButtons(options=[("Jalali", "jalali"), ("Gregorian", "gregorian")], value="jalali")
        self.export_button = w.Button(description="Export CSV", icon="download")
        self.output = w.Output()
        self.message = _auto_direction(w.HTML())
        self.campaign.observe(lambda _: self.show(), "value")
        for control in (self.lang, self.calendar):
            control.observe(
                lambda _: self.show_range() if self.shown and self.shown[0] == "range" else self.show(), "value"
            )
        self.calendar.observe(self._placeholders, "value")
        self.range_button.on_click(lambda _: self.show_range())
        self.export_button.on_click(self._export)
        self._placeholders()
        super().__init__(
            [
                AUTO_DIRECTION,
                w.HBox([self.campaign, self.lang, self.calendar, self.export_button]),
                w.HBox([self.since, self.until, self.lines, self.range_button]),
                self.message,
                self.output,
            ]
        )
        self.show()

    def _placeholders(self, _=None) -> None:
        jalali = self.calendar.value == "jalali"
        self.since.placeholder = "1404-08-01, 7d" if jalali else "2025-10-23, 7d"
        self.until.placeholder = "1404-09-01, today" if jalali else "2025-11-22, today"

    def _tables(self, *frames: pd.DataFrame) -> list[HTML]:
        from .report import html_table

        direction = "rtl" if self.lang.value == "fa" else "ltr"
        return [
            HTML(f'<div dir="{direction}">{html_table(f, self.lang.value, self.calendar.value)}</div>') for f in frames
        ]

    def show(self) -> None:
        """The post-mortem of the chosen campaign."""
        self.output.clear_output()
        if not self.campaign.value:
            self.message.value = "No campaign in the store yet: sync first."
            return
        try:
            pm = analytics.campaign_postmortem(self.store, self.campaign.value)
            lang = self.lang.value
            with self.output:
                display(
                    *self._tables(pm.funnel),
                    charts.campaign_funnel(pm, lang),
                    *self._tables(pm.failure_reasons[["status", "meaning_en", "meaning_fa", "recipients", "share"]]),
                    charts.campaign_vs_baseline(pm, lang),
                    charts.time_to_final_cdf(pm, lang),
                )
            self.shown = (self.campaign.value, pm)
            first = i18n.when(pm.header["first_send"], lang, self.calendar.value, with_time=False)
            self.message.value = html.escape(f"{pm.summary(lang)} · {first}")
        except Exception as error:
            self.message.value = _error_html(error)

    def show_range(self) -> None:
        """The delivery report of the chosen dates and lines, by day and by operator."""
        self.output.clear_output()
        try:
            since, until = window(self.since.value.strip() or None, self.until.value.strip() or None)
            options = {"since": since, "until": until, "lines": tuple(self.lines.value)}
            daily = analytics.delivery_report(self.store, by=["day"], calendar=self.calendar.value, **options)
            operators = analytics.delivery_report(self.store, by=["operator"], **options)
            lang = self.lang.value
            columns = ["recipients", "known", "delivered_rate", "rate_low", "rate_high", "unknown_total"]
            with self.output:
                display(
                    charts.delivery_rate_over_time(daily, "day", lang),
                    charts.operator_outcomes(operators, lang),
                    *self._tables(daily[["day", *columns]]),
                )
            self.shown = ("range", daily)
            total = daily.sum(numeric_only=True)
            note = i18n.unknown_note(
                int(total.get("recipients", 0)),
                int(total.get("expired", 0)),
                int(total.get("in_flight", 0) + total.get("delivery_unknown", 0)),
                lang,
                untold=int(total.get("unknown", 0)),
            )
            self.message.value = html.escape(
                f"{i18n.number(total.get('recipients', 0), lang)} {i18n.label('recipients', lang)} · "
                f"{i18n.number(len(daily), lang)} {i18n.label('day', lang)} · {note}"
            )
        except Exception as error:
            self.message.value = _error_html(error)

    def _export(self, _=None) -> None:
        if self.shown is None:
            self.message.value = "Nothing to export yet."
            return
        stem, shown = self.shown
        path = self.export_folder / f"{stem}.csv"
        try:
            if isinstance(shown, analytics.CampaignPostmortem):
                shown.to_csv(path)
            else:
                shown.to_csv(path, index=False)
            self.message.value = f"Written: {html.escape(str(path))}"
        except Exception as error:
            self.message.value = _error_html(error)


class ActiveAlerts(w.VBox):
    """The watch's alerts that have not ended, newest first, in English or Persian; Refresh reads
    the store again (a running `payamak watch` keeps it up to date)."""

    def __init__(self, store: Store, *, lang: str = "en", active: bool = True):
        self.store = store
        self.lang = w.ToggleButtons(options=[("English", "en"), ("فارسی", "fa")], value=lang)
        self.active = w.Checkbox(value=active, description="only active")
        self.refresh = w.Button(description="Refresh", icon="refresh")
        self.table = w.HTML()
        for control in (self.lang, self.active):
            control.observe(self.show, names="value")
        self.refresh.on_click(self.show)
        super().__init__([w.HBox([self.lang, self.active, self.refresh]), self.table])
        self.show()

    def show(self, _=None) -> None:
        from .alerts import alerts_html

        try:
            self.table.value = alerts_html(self.store, lang=self.lang.value, active=self.active.value)
        except Exception as error:
            self.table.value = _error_html(error)

"""MessageInfo rows: the values GetMessages answers with, in the contract's element order.

A row is a tuple of strings (None: nil), built from a history's columns or a run-time send;
with `newer`, as a deployment of the latest generation writes it (see `latest.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import numpy as np

from ..dates import TEHRAN
from . import latest
from .history import CAMPAIGN, OUT, History, recipient_numbers

USER_ID = 48213


@dataclass(frozen=True)
class Tariffs:
    fa: Decimal
    en: Decimal

    def of(self, persian: bool) -> Decimal:
        return self.fa if persian else self.en


def tehran_times(epoch_seconds: np.ndarray) -> list[str]:
    """Tehran wall-clock times without an offset, the way a WCF service writes a local DateTime."""
    t = np.asarray(epoch_seconds, dtype=np.int64)
    offsets = {datetime.fromtimestamp(int(x), TEHRAN).utcoffset() for x in (t.min(), t.max())}
    if len(offsets) == 1:
        local = (t + int(offsets.pop().total_seconds())).astype("datetime64[s]")
        return np.datetime_as_string(local).tolist()
    return [datetime.fromtimestamp(int(x), TEHRAN).replace(tzinfo=None).isoformat() for x in t]


def history_rows(
    h: History,
    lines: tuple[str, ...],
    index: np.ndarray,
    now: float,
    incidents: tuple,
    tariffs: Tariffs,
    newer: bool = False,
) -> list[tuple]:
    """Rows of history records as the clock `now` shows them (read flags, NotSent under incidents)."""
    if len(index) == 0:
        return []
    when = tehran_times(h.t[index])
    contents = h.contents(index)
    single = recipient_numbers(h.config.seed, h.first_id + index, 0)
    not_sent = h.not_sent_of(index, incidents)
    rows = []
    for k, i in enumerate(index.tolist()):
        line = lines[h.line[i]]
        if h.direction[i] == OUT:
            count = int(h.recipients[i])
            sent = count - int(not_sent[k])
            rows.append(
                _out_row(
                    h,
                    i,
                    when[k],
                    contents[k],
                    line,
                    count,
                    sent,
                    "0" + str(single[k]) if count == 1 else None,
                    tariffs,
                    newer,
                )
            )
        else:
            read = "true" if h.read_at[i] <= now else "false"
            rows.append(
                (when[k], contents[k], "0", "1", None, "false", read, "FA", str(h.first_id + i), "In", "false")
                + ("0", "1", line, "None", "None", "0" + str(h.peer[i]), "0", "None", "0", None, str(USER_ID))
            )
    return rows


def _send_method(h: History, i: int, newer: bool) -> str:
    if int(h.kind[i]) != CAMPAIGN:
        return "WebService"
    return latest.campaign_method(h.config.seed, int(h.campaign[i])) if newer else "Group"


def _out_row(h: History, i: int, when: str, content: str, line: str, count: int, sent: int, receiver, tariffs, newer):
    parts, tariff = int(h.parts[i]), tariffs.of(bool(h.persian[i]))
    campaign = int(h.kind[i]) == CAMPAIGN
    return (
        when,
        content,
        str(sent * parts * tariff),
        str(count),
        None,
        "false",
        "true",
        "FA" if h.persian[i] else "EN",
        str(h.first_id + i),
        "Out",
        "false",
        str(count - sent),
        str(parts),
        receiver,
        _send_method(h, i, newer),
        "Sent",
        line,
        str(sent),
        "Sent",
        str(tariff),
        f"Campaign {int(h.campaign[i]) + 1}" if campaign else None,
        str(USER_ID),
    )


def scheduled_rows(
    h: History, lines: tuple[str, ...], index: np.ndarray, tariffs: Tariffs, newer: bool = False
) -> list[tuple]:
    """Campaign records still waiting for their time: nothing sent, nothing charged yet."""
    if len(index) == 0:
        return []
    when = tehran_times(h.t[index])
    contents = h.contents(index)
    rows = []
    for k, i in enumerate(index.tolist()):
        parts, tariff = int(h.parts[i]), tariffs.of(bool(h.persian[i]))
        rows.append(
            (when[k], contents[k], "0", str(int(h.recipients[i])), None, "false", "true")
            + ("FA" if h.persian[i] else "EN", str(h.first_id + i), "Schedule", "false", "0", str(parts), None)
            + (_send_method(h, i, newer), "None", lines[h.line[i]], "0", "WaitForSend", str(tariff))
            + (f"Campaign {int(h.campaign[i]) + 1}", str(USER_ID))
        )
    return rows


def runtime_row(send, not_sent: int, now: float | None = None, newer: bool = False) -> tuple:
    """The row of a send made while the simulator runs, as the clock `now` shows it."""
    count = len(send.numbers)
    sent = count - not_sent
    return (
        tehran_times(np.array([int(send.t)]))[0],
        send.texts[0],
        str(sent * send.parts * send.tariff),
        str(count),
        None,
        "true" if send.flash else "false",
        "true",
        "FA" if send.persian else "EN",
        str(send.message_id),
        "Out",
        "false",
        str(not_sent),
        str(send.parts),
        send.numbers[0] if count == 1 else None,
        "WebService",
        "Sent",
        send.line,
        str(sent),
        latest.runtime_status(send.many_to_many, now - send.t) if newer and now is not None else "Sent",
        str(send.tariff),
        None,
        str(USER_ID),
    )

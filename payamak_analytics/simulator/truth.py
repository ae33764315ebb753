"""What a correct sync of one account must reproduce, at the simulator's clock.

Besides the counts a sync can be checked against, each batch carries when the simulator moved
each recipient to its final status (`final_at`, epoch seconds; None while still in flight):
the truth a time-to-final estimate is measured against.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import numpy as np

from ..dates import TEHRAN
from .history import IN, OUT, History

BLOCK = 20_000  # records expanded at a time


def account_truth(world, username: str, with_batches: bool = True, with_numbers: bool = False) -> dict:
    """The account's visible records, recipients by status and (optionally) every batch."""
    now = world.clock.now()
    h: History | None = world.histories.get(username)
    account = world.accounts[username]
    by_status: Counter[int] = Counter()
    batches: dict[str, dict] = {}
    sent = received = read = 0
    if h is not None:
        shown = h.visible(now)
        inbox = h.direction[:shown] == IN
        received, read = int(inbox.sum()), int((inbox & (h.read_at[:shown] <= now)).sum())
        sent_index = np.flatnonzero(h.direction[:shown] == OUT)
        sent = len(sent_index)
        for begin in range(0, len(sent_index), BLOCK):
            index = sent_index[begin : begin + BLOCK]
            _history_block(world, h, account.lines, index, now, by_status, batches if with_batches else None)
            if with_numbers and with_batches:
                _add_numbers(h, index, batches)
    runtime = [s for s in list(world.sends.values()) if s.username == username]
    for send in runtime:
        course = send.course(world.seed)
        statuses = world.reported(send.message_id, np.arange(len(send.numbers)), send.statuses(world.seed, now))
        by_status.update(statuses.tolist())
        if with_batches:
            batches[str(send.message_id)] = _batch(
                len(send.numbers),
                int(np.isin(course.final, (10, 11)).sum()),
                send.t,
                statuses,
                send.t + course.final_after,
                now,
            )
            if with_numbers:
                batches[str(send.message_id)]["numbers"] = list(send.numbers)
    truth = {
        "clock": datetime.fromtimestamp(now, TEHRAN).isoformat(),
        "clock_epoch": now,
        "account": username,
        "messages": {
            "sent": sent + len(runtime),
            "received": received,
            "received_read": read,
            "received_unread": received - read,
        },
        "recipients": int(sum(by_status.values())),
        "recipients_by_status": {str(k): v for k, v in sorted(by_status.items())},
        "incidents": [i.as_dict() for i in world.incidents],
        "calls": dict(world.calls),
    }
    if with_batches:
        truth["batches"] = batches
    return truth


def _history_block(world, h: History, lines, index, now, by_status: Counter, batches: dict | None) -> None:
    owner, row = h.expand(index)
    course = h.course(owner, row, world.incidents, lines)
    statuses = world.reported(h.first_id + owner, row, course.status(now - h.t[owner]))
    values, counts = np.unique(statuses, return_counts=True)
    by_status.update(dict(zip(values.tolist(), counts.tolist())))
    if batches is None:
        return
    not_sent = h.not_sent_of(index, world.incidents)
    final_at = h.t[owner] + course.final_after
    ends = np.cumsum(h.recipients[index].astype(np.int64))
    for k, i in enumerate(index.tolist()):
        begin, end = int(ends[k] - h.recipients[i]), int(ends[k])
        batches[str(h.first_id + i)] = _batch(
            int(h.recipients[i]), int(not_sent[k]), float(h.t[i]), statuses[begin:end], final_at[begin:end], now
        )


def _batch(count: int, not_sent: int, sent_at: float, statuses: np.ndarray, final_at: np.ndarray, now: float) -> dict:
    values, counts = np.unique(statuses, return_counts=True)
    reached = (final_at <= now).tolist()
    return {
        "count": count,
        "not_sent": not_sent,
        "statuses": {str(v): int(n) for v, n in zip(values.tolist(), counts.tolist())},
        "sent_at": sent_at,
        "final_at": [t if r else None for t, r in zip(np.round(final_at, 1).tolist(), reached)],
    }


def _add_numbers(h: History, index: np.ndarray, batches: dict) -> None:
    owner, row = h.expand(index)
    numbers = ("0" + h.numbers(owner, row).astype(str).astype(object)).tolist()
    ends = np.cumsum(h.recipients[index].astype(np.int64))
    for k, i in enumerate(index.tolist()):
        batches[str(h.first_id + i)]["numbers"] = numbers[int(ends[k] - h.recipients[i]) : int(ends[k])]

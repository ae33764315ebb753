"""The demo: a careful user living through the simulator's 90-day history on its clock.

The simulator shows a record only once its clock has reached it, and its clock stands still
between the demo's own advances, so the store ends as a user's would who synced like this:

- every six simulated days from the first day, and at the end: each delivery report is read
  before the service forgets it (after seven days), so outcomes are known across the whole range;
- after the newest campaign, every 15 minutes for three hours (past the history's end if need
  be): a final status comes tens of minutes to a few hours after the send
  (the simulator's median is about 45 min, its p90 about 140), and only polls finer than that
  let the report state both with bounds, which are never narrower than the polls' spacing.

About 27 syncs in all (each costs a couple of seconds here, however little it reads), where a
sync every half hour through the last day took 48 on its own and watched no campaign's start.
"""

from __future__ import annotations

import time
from datetime import datetime

import numpy as np
import requests

from .client import PanelClient
from .dates import TEHRAN
from .simulator import HistoryConfig, WorldConfig
from .simulator.history import CAMPAIGN
from .store import Store
from .sync import sync

DAYS = 90
MESSAGES = 3_000
COARSE = 6 * 86_400  # under the seven days the service keeps a delivery report
WATCH = 3 * 3_600  # how long the newest campaign is watched after its send,
WATCH_STEP = 900  # and how often
CLOSE = 60.0  # syncs planned closer than this (seconds) are one sync


def world_config(messages: int = MESSAGES, days: int = DAYS, end: float | None = None) -> WorldConfig:
    """A history ending now (or at `end`) and a frozen clock on its first day."""
    end = time.time() if end is None else end
    return WorldConfig(
        history=HistoryConfig(days=days, messages=messages),
        start=end - days * 86_400,
        history_end=end,
        clock_speed=0.0,
    )


def campaign_starts(history) -> np.ndarray:
    """When each campaign of a simulated history sent its first chunk (epoch seconds), oldest first."""
    chunks = history.kind == CAMPAIGN
    ids, t = history.campaign[chunks], history.t[chunks]
    return np.sort([t[ids == campaign].min() for campaign in np.unique(ids)]).astype(float)


def schedule(start: float, end: float, campaigns) -> list[float]:
    """The moments (epoch seconds, ascending) at which the demo syncs: the last is `end`, or the
    end of the newest campaign's watch when that campaign went out less than WATCH before `end`."""
    moments = list(np.arange(start + COARSE, end, COARSE)) + [end]
    watched = [t for t in campaigns if start <= t <= end]
    if watched:
        moments += list(watched[-1] + np.arange(WATCH_STEP, WATCH + 1, WATCH_STEP))
    chosen: list[float] = []
    for moment in sorted(float(m) for m in moments if m > start):
        if chosen and moment - chosen[-1] < CLOSE:
            chosen[-1] = moment  # the later one covers both
        else:
            chosen.append(moment)
    return chosen


def live_through(simulator, client: PanelClient, store: Store, report=print) -> int:
    """Sync at every moment of the schedule, advancing the simulator's clock between syncs;
    returns how many syncs ran."""
    world = simulator.world
    moments = schedule(world.clock.now(), world.history.end, campaign_starts(world.history))

    def now() -> datetime:
        return datetime.fromtimestamp(world.clock.now(), TEHRAN)

    admin = simulator.url.rsplit("/", 1)[0] + "/_sim/clock"
    sync(client, store, progress=False, now=now)
    for done, moment in enumerate(moments, start=1):
        step = moment - world.clock.now()
        requests.post(admin, params={"advance": step}, timeout=30).raise_for_status()
        sync(client, store, progress=False, now=now)
        if done % 10 == 0 or done == len(moments):
            report(f"  {now():%Y-%m-%d %H:%M} (simulated), {done}/{len(moments)} syncs")
    return len(moments) + 1

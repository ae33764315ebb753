"""What a reader takes from the reports: known outcomes only under every rate, each rate with its n
and interval, Persian done fully, times to final close to the simulator's truth, mistakes refused.

Two stores: one synced once at the end of a 90-day history (most reports expired), and one polled
every 10 simulated minutes while a campaign's statuses move (the clock is the simulator's)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import lxml.html
import numpy as np
import pandas as pd
import pytest

from payamak_analytics import PanelClient, analytics, codes, demo, estimates, i18n
from payamak_analytics.dates import TEHRAN
from payamak_analytics.errors import InputError, NotFoundError
from payamak_analytics.report import write_report
from payamak_analytics.simulator import HistoryConfig, Simulator, WorldConfig
from payamak_analytics.store import Store
from payamak_analytics.sync import sync

from .conftest import CHROMIUM_FLAGS, START, admin_post

ARTEFACTS = Path(os.environ.get("PAYAMAK_ARTEFACTS", Path(__file__).resolve().parents[1] / "reports"))
NOW = datetime.fromtimestamp(START, TEHRAN)
RATE_CELL = re.compile(r"^\d+\.\d% \(\d+\.\d–\d+\.\d\) of [\d,]+$|^– \(of 0\)$")


@pytest.fixture(scope="module")
def once(tmp_path_factory):
    """A store synced once, at the end of a 90-day history: most reports have expired."""
    config = WorldConfig(history=HistoryConfig(messages=1500, days=90), start=START, clock_speed=0.0)
    with Simulator(config, admin=True, threads=16) as simulator:
        store = Store(tmp_path_factory.mktemp("once") / "p.duckdb")
        sync(PanelClient("demo", "demo", wsdl=simulator.wsdl_url), store, progress=False)
        yield store


def _simulated_now(simulator):
    return lambda: datetime.fromtimestamp(simulator.world.clock.now(), TEHRAN)


@pytest.fixture(scope="module")
def polled(tmp_path_factory):
    """A campaign of 600 recipients (six batches of 100) polled every 10 simulated minutes for 12
    hours, and the time each recipient's status really became final (the simulator's own status
    function, read every 15 simulated seconds)."""
    config = WorldConfig(history=HistoryConfig(messages=60, days=30), start=START, clock_speed=0.0)
    with Simulator(config, admin=True, threads=8) as simulator:
        client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url)
        store = Store(tmp_path_factory.mktemp("polled") / "p.duckdb")
        numbers = [f"0912{i:07d}" for i in range(300)] + [f"0935{i:07d}" for i in range(300)]
        batches = [
            client.send_batch_sms("50001234", numbers[k : k + 100], "حراج پاییزه: تا ۳۰٪ تخفیف").batch_sms_id
            for k in range(0, len(numbers), 100)
        ]
        for _ in range(72):
            admin_post(simulator, "clock", advance=600)
            sync(client, store, progress=False, now=_simulated_now(simulator))
        final = [c for c, s in codes.DELIVERY_STATUSES.items() if s.final and c > 0]
        ages = np.arange(0, 12 * 3600, 15.0)
        truth = []
        for batch in batches:
            send = simulator.world.sends[batch]
            seen = np.array([np.isin(send.statuses(simulator.world.seed, send.t + age), final) for age in ages])
            truth += list(ages[seen.argmax(axis=0)][seen.any(axis=0)] / 60)
        yield store, batches, pd.Series(truth)


def test_no_rate_denominator_holds_an_expired_recipient(once):
    rows = once.deliveries()
    outcome = rows["status"].map(lambda s: codes.delivery_status(int(s)).outcome)
    outcome[rows["status"] == -3] = "expired"
    rows["known"] = outcome.isin(codes.FINAL_OUTCOMES) & (rows["status"] != -3)
    rows["delivered"] = outcome == "delivered"
    assert (outcome == "expired").mean() > 0.5  # the case the reports must not misread
    for by in ("operator", "line"):
        report = analytics.delivery_report(once, by=[by], in_flight_cutoff=None).set_index(by)
        expected = rows.groupby(by)[["known", "delivered"]].sum()
        assert (report["known"] == expected["known"].reindex(report.index)).all()
        rate = expected["delivered"] / expected["known"].where(expected["known"] > 0)
        assert np.allclose(report["delivered_rate"], rate.reindex(report.index), equal_nan=True)
        assert (report["expired"] + report["known"] <= report["recipients"]).all()
    operators = analytics.delivery_report(once, by=["operator"])
    assert operators["recipients"].is_monotonic_decreasing  # largest first


def test_wilson_interval_by_hand():
    low, high = estimates.wilson([0, 10, 81], [10, 10, 100])
    assert low[0] == 0 and high[0] == pytest.approx(0.2775, abs=1e-4)
    assert low[1] == pytest.approx(0.7225, abs=1e-4) and high[1] == pytest.approx(1)
    assert (low[2], high[2]) == pytest.approx((0.7222, 0.8749), abs=1e-4)
    assert np.isnan(estimates.wilson([0], [0])[0][0])  # no trials: no interval


def test_every_wilson_interval_holds_its_own_rate():
    """At 0% and 100% rounding put an end a hair past the rate for some n (1 - 1e-16 at 100%),
    and the day chart's error bars then failed for a day with every known outcome delivered."""
    n = np.repeat(np.arange(1, 3001), np.arange(1, 3001) + 1)
    k = np.concatenate([np.arange(m + 1) for m in range(1, 3001)])
    low, high = estimates.wilson(k, n)
    assert ((0 <= low) & (low <= k / n) & (k / n <= high) & (high <= 1)).all()


def test_every_rate_cell_carries_its_n_and_interval(once, tmp_path):
    write_report(once, tmp_path, now=NOW)
    tree = lxml.html.parse(str(tmp_path / "report.html"))
    checked = 0
    for table in tree.iter("table"):
        headers = [th.text_content() for th in table.iter("th")]
        for column, name in enumerate(headers):
            if "Delivered (of known)" not in name and "delivered (of known)" not in name:
                continue
            for row in table.iter("tr"):
                cells = row.findall("td")
                if cells:
                    assert RATE_CELL.match(cells[column].text_content()), cells[column].text_content()
                    checked += 1
    assert checked > 10
    assert "reports expired before a sync read them" in tree.getroot().text_content()


def _rendered_text(page: Path, tmp_path: Path, screenshot: str) -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it where apt-get can)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        tab = browser.new_page(viewport={"width": 1200, "height": 900})
        tab.goto(page.as_uri())
        ARTEFACTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(ARTEFACTS / screenshot), full_page=True)
        text = tab.evaluate("document.body.innerText")
        browser.close()
    return text


def test_persian_report_reads_as_persian(once, tmp_path):
    page = write_report(once, tmp_path, lang="fa", now=NOW)
    text = _rendered_text(page, tmp_path, "report_fa.png")
    assert not re.search(r"[A-Za-z]+_[a-z]+", text)  # no snake_case anywhere
    texts = " ".join(once.sql("SELECT DISTINCT text FROM batches")["text"])
    allowed = set(re.findall(r"[A-Za-z][A-Za-z.:/]*", texts))  # Latin words quoted from the messages
    latin = set(re.findall(r"[A-Za-z][A-Za-z.:/]*", text))
    assert latin <= allowed, latin - allowed
    assert "ارسال‌ها" in text and "ارسال ها" not in text  # the half-space
    today = i18n.jalali(datetime.now(TEHRAN))
    assert i18n.persian_digits(today) in text  # the Jalali date of generation


def test_english_report_isolates_persian_quotations(once, tmp_path):
    page = write_report(once, tmp_path, lang="en", now=NOW)
    tree = lxml.html.parse(str(page))
    for element in tree.iter():
        own = (element.text or "") + (element.tail or "")
        if not isinstance(element.tag, str) or not i18n.is_persian(element.text or ""):
            continue
        isolated = [a for a in element.iterancestors()] + [element]
        assert any(a.tag in ("bdi", "blockquote") or (a.get("dir") and a.tag != "html") for a in isolated), own
    text = _rendered_text(page, tmp_path, "report_en.png")
    assert not re.search(r"\b[a-z]+_[a-z]+\b", text)


def test_a_mostly_unknown_campaign_says_so(once):
    table = analytics.campaign_summary(once, now=NOW)
    unknown = table[table["known"] == 0].iloc[0]
    pm = analytics.campaign_postmortem(once, unknown["campaign"], now=NOW)
    assert "outcome unknown for all of them" in pm.summary() and "0 delivered" not in pm.summary()
    assert "نتیجهٔ هیچ‌کدام معلوم نیست" in pm.summary("fa")
    assert "<img" in pm._repr_html_()


def test_campaign_list_rates_equal_a_recomputation(once):
    table = analytics.campaign_summary(once, now=NOW, sort="delivered_rate")
    assert table["delivered_rate"].dropna().is_monotonic_increasing
    for row in table.itertuples():
        mine = analytics.recipients(once, campaign=row.campaign, now=NOW)
        known = mine["outcome"].isin(codes.FINAL_OUTCOMES)
        assert row.known == known.sum() and row.recipients == len(mine)
        if known.any():
            assert row.delivered_rate == pytest.approx((mine["outcome"] == "delivered").sum() / known.sum())
    assert not any(name.startswith("auto-") for name in table["name"])
    shown = table._repr_html_()  # what a notebook shows
    assert "Delivered (of known)" in shown and "delivered_rate" not in shown
    listed = subprocess.run(
        [sys.executable, "-m", "payamak_analytics.cli", "campaign", "list", "--db", str(once.path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert "Delivered (of known)" in listed.stdout and "_" not in listed.stdout.splitlines()[0]


@pytest.mark.timeout(900)  # the fixture lives through 72 polls: minutes on a shared machine
def test_time_to_final_matches_the_simulators_truth(polled):
    store, batches, truth = polled
    table, curve = analytics.time_to_final(store, batches)
    overall = table[table["group"] == "all"].set_index("statistic")
    assert overall.loc["median", "usable"] >= 550 and overall.loc["median", "too_sparse"] == 0
    # polls 10 minutes apart: the estimate lies within one poll interval of the truth
    for statistic, q in (("median", 0.5), ("p90", 0.9)):
        estimate, real = overall.loc[statistic, "minutes"], truth.quantile(q)
        assert abs(estimate - real) <= 10, (statistic, estimate, real)
        assert overall.loc[statistic, "minutes_low"] <= min(estimate, real)
        assert max(estimate, real) <= overall.loc[statistic, "minutes_high"]
    assert set(table["group"]) >= {"all", "MCI", "Irancell"} and len(curve)


def test_a_sync_that_did_not_read_a_batch_never_narrows_its_times(tmp_path):
    """Polls at 5 min, then a sync of messages only at 65 min, then a full one at 125 min: every
    recipient's interval still holds the moment the simulator made its status final."""
    config = WorldConfig(history=HistoryConfig(messages=60, days=30), start=START, clock_speed=0.0)
    with Simulator(config, admin=True, threads=8) as simulator:
        client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url)
        store = Store(tmp_path / "p.duckdb")
        numbers = [f"0912{i:07d}" for i in range(100)]
        batch = client.send_batch_sms("50001234", numbers, "حراج پاییزه").batch_sms_id
        for advance, deliveries in ((300, True), (3600, False), (3600, True)):
            admin_post(simulator, "clock", advance=advance)
            sync(client, store, progress=False, deliveries=deliveries, now=_simulated_now(simulator))
        send = simulator.world.sends[batch]
        final_after = send.course(simulator.world.seed).final_after / 60
    rows = analytics.final_intervals(store, [batch])
    ended = rows[rows["upper"] < np.inf]
    assert len(ended) > 80
    truth = final_after[ended["row"].to_numpy() - 1]
    assert ((ended["lower"] < truth) & (truth <= ended["upper"])).all()


def test_quantile_bounds_hold_what_mixed_poll_schedules_cannot_tell():
    """Two groups polled on different grids (every 30 min from 5, every 35 from 20) and one in ten
    looked at once at random: the Turnbull fit gathers mass into narrow innermost cells, but the
    bounds still hold the sample's true median and p90."""
    rng = np.random.default_rng(3)
    times = 1 + rng.uniform(0, 10, 6000) + rng.exponential(60, 6000)
    grids = [5 + 30 * np.arange(40), 20 + 35 * np.arange(40)]
    lower, upper = np.zeros(6000), np.full(6000, np.inf)
    for k, t in enumerate(times):
        if k % 10 == 9:  # one look at a random moment: current status only
            look = rng.uniform(0, 300)
            lower[k], upper[k] = (0, look) if t <= look else (look, np.inf)
            continue
        grid = grids[k % 2]
        after = np.searchsorted(grid, t)
        lower[k], upper[k] = (grid[after - 1] if after else 0), grid[after]
    pairs = pd.DataFrame({"lower": lower, "upper": upper}).value_counts().reset_index(name="n")
    answers = estimates.quantile_intervals(pairs["lower"], pairs["upper"], pairs["n"])
    for (estimate, low, high), q in zip(answers, (0.5, 0.9), strict=True):
        real = np.quantile(times, q)
        assert low <= real <= high and low <= estimate <= high, (q, estimate, low, high, real)
    median_low, median_high = answers[0][1:]
    assert median_high - median_low <= 45, answers  # and they still say something


def test_the_demo_syncs_before_any_report_expires_and_watches_its_newest_campaign():
    start, end = START - 90 * 86_400, START
    for newest in (end - 5 * 86_400, end - 3600):  # watched in full, even past the history's end
        moments = demo.schedule(start, end, [start + 3 * 86_400, newest])
        gaps = np.diff([start, *moments])
        assert end in moments and moments[-1] == max(end, newest + demo.WATCH)
        assert (gaps > 0).all() and gaps.max() < 7 * 86_400
        watched = [round(m - newest) for m in moments if 0 < m - newest <= demo.WATCH]
        assert watched == list(range(demo.WATCH_STEP, demo.WATCH + 1, demo.WATCH_STEP))
        assert len(moments) <= 30  # a couple of seconds each: the demo stays well under three minutes


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_demos_way_of_syncing_states_time_to_final_close_to_the_truth(tmp_path):
    """A 10-day history lived through as the demo does: the watched campaign's median and p90
    lie within 15 minutes (the watch's poll spacing) of the simulator's truth, inside their bounds."""
    with Simulator(demo.world_config(400, days=10, end=START), admin=True, threads=8) as simulator:
        store = Store(tmp_path / "p.duckdb")
        client = PanelClient("demo", "demo", wsdl=simulator.wsdl_url)
        demo.live_through(simulator, client, store, report=lambda line: None)
        history = simulator.world.history
        watched = demo.campaign_starts(history)[-1]
        batches = store.sql(
            "SELECT batch_id FROM batches WHERE epoch(sent_at) BETWEEN ? AND ?", [watched, watched + 600]
        )["batch_id"]
        owner, row = history.expand(batches.to_numpy() - history.first_id)
    course = history.course(owner, row)
    final = np.isin(course.final, [c for c, st in codes.DELIVERY_STATUSES.items() if st.final and c > 0])
    truth = np.sort(np.where(final, course.final_after / 60, np.inf))
    overall = analytics.time_to_final(store, batches)[0].query("group == 'all'").set_index("statistic")
    assert overall.loc["median", "usable"] >= 300
    for statistic, q in (("median", 0.5), ("p90", 0.9)):
        real = truth[int(q * len(truth))]
        estimate, low, high = overall.loc[statistic, ["minutes", "minutes_low", "minutes_high"]]
        assert abs(estimate - real) <= 15 and low <= real <= high, (statistic, estimate, low, high, real)


def test_sparse_polls_say_so_instead_of_a_line(once):
    table = analytics.campaign_summary(once, now=NOW)
    pm = analytics.campaign_postmortem(once, table["campaign"].iloc[0], now=NOW)
    overall = pm.time_to_final[pm.time_to_final["group"] == "all"]
    assert overall["minutes"].isna().all() and overall["too_sparse"].iloc[0] > 0


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "payamak_analytics.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )


def test_mistakes_are_refused_and_create_nothing(once, tmp_path):
    missing = tmp_path / "missing.duckdb"
    for args in (("report", "--out", str(tmp_path / "out")), ("export", "--parquet", str(tmp_path / "out"))):
        done = _cli(*args, "--db", str(missing), cwd=tmp_path)
        assert done.returncode == 1 and "no store" in done.stderr
        assert not missing.exists() and not (tmp_path / "out").exists()
    done = _cli(
        "report",
        "--db",
        str(once.path),
        "--since",
        "1399-01-01",
        "--until",
        "1399-02-01",
        "--out",
        str(tmp_path / "out"),
        cwd=tmp_path,
    )
    assert done.returncode == 1 and "2020-03-20" in done.stderr and not (tmp_path / "out").exists()  # Jalali, read
    with pytest.raises(InputError, match="future"):
        write_report(once, tmp_path / "out", since="2099-01-01", now=NOW)
    with pytest.raises(NotFoundError, match="no sends"):
        write_report(once, tmp_path / "out", since="1404-01-01", until="1404-01-10", now=NOW)
    with pytest.raises(NotFoundError, match="No campaign"):
        write_report(once, tmp_path / "out", campaign="nothing", now=NOW)
    assert not (tmp_path / "out").exists()


def test_a_one_batch_sends_id_from_the_recipients_gets_its_post_mortem(once):
    """campaigns() lists runs of two batches or more; the id recipients() gives a send of one
    batch is still a post-mortem's (a user copies it from there), and a made-up one is refused."""
    listed = set(analytics.campaigns(once)["campaign"])
    ids = analytics.recipients(once, now=NOW)["campaign_id"].dropna()
    lone = min(set(ids) - listed)
    postmortem = analytics.campaign_postmortem(once, lone, now=NOW)
    assert postmortem.header["campaign"] == lone and postmortem.header["batches"] == 1
    assert postmortem.header["recipients"] == int((ids == lone).sum())
    with pytest.raises(NotFoundError, match="No campaign"):
        analytics.campaign_postmortem(once, "auto-1", now=NOW)

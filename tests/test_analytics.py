"""Reports, post-mortems, charts and the HTML report, on a store synced from the simulator."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
from datetime import date

import numpy as np
import pandas as pd
import pytest
from matplotlib import image
from matplotlib.backends.backend_agg import FigureCanvasAgg

from payamak_analytics import PanelClient, analytics, charts, codes
from payamak_analytics.report import write_report
from payamak_analytics.simulator import HistoryConfig, Simulator, WorldConfig
from payamak_analytics.store import Store
from payamak_analytics.sync import sync

from .conftest import CHROMIUM_FLAGS, truth


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """A store synced from a 10-day history, and the simulator's truth at that moment."""
    with Simulator(
        WorldConfig(history=HistoryConfig(messages=1500, days=10), clock_speed=0.0), admin=True, threads=16
    ) as simulator:
        store = Store(tmp_path_factory.mktemp("store") / "p.duckdb")
        sync(PanelClient("demo", "demo", wsdl=simulator.wsdl_url), store, progress=False)
        yield store, truth(simulator, batches=0)


def test_outcome_counts_equal_the_truth(synced):
    store, t = synced
    report = analytics.delivery_report(store, by=[], in_flight_cutoff=None)
    expected = dict.fromkeys(codes.OUTCOMES, 0)
    for status, n in t["recipients_by_status"].items():
        expected["expired" if status == "-3" else codes.delivery_status(int(status)).outcome] += n
    assert report[list(codes.OUTCOMES)].iloc[0].to_dict() == expected
    assert report["recipients"][0] == t["recipients"]


def test_rates_recomputed_in_pandas_equal_the_sql(synced):
    store, _ = synced
    report = analytics.delivery_report(store, by=["operator"]).set_index("operator")
    rows = store.deliveries()
    now = pd.Timestamp.now(tz="Asia/Tehran")
    outcome = rows["status"].map(lambda s: codes.delivery_status(int(s)).outcome)
    outcome[rows["status"] == -3] = "expired"
    outcome[(outcome == "in_flight") & (rows["sent_at"] < now - pd.Timedelta(hours=72))] = "delivery_unknown"
    final = outcome.isin(codes.FINAL_OUTCOMES)
    delivered = outcome == "delivered"
    by_operator = pd.DataFrame({"delivered": delivered, "final": final, "operator": rows["operator"]}).groupby(
        "operator"
    )
    rate = by_operator["delivered"].sum() / by_operator["final"].sum()
    assert np.allclose(rate, report["delivered_rate"].reindex(rate.index), equal_nan=True)
    assert (by_operator["final"].sum() == report["known"].reindex(rate.index)).all()


def test_jalali_calendar():
    assert analytics.jalali_month(date(2025, 3, 21)) == "1404-01"
    assert analytics.jalali_month(date(2025, 3, 20)) == "1403-12"


def test_reports_group_by_every_dimension(synced):
    store, t = synced
    months = analytics.delivery_report(store, by=["month"])
    assert all(m.startswith("14") for m in months["month"]) and months["recipients"].sum() == t["recipients"]
    gregorian = analytics.delivery_report(store, by=["month"], calendar="gregorian")
    assert all(m.startswith("20") for m in gregorian["month"])
    weeks = analytics.delivery_report(store, by=["week"], calendar="gregorian")
    assert {date.fromisoformat(w).weekday() for w in weeks["week"]} == {5}  # weeks start on Saturday
    for dimension in analytics.DIMENSIONS:
        assert analytics.delivery_report(store, by=[dimension])["recipients"].sum() == t["recipients"]
    both = analytics.delivery_report(store, by=["day", "operator"])
    assert both["recipients"].sum() == t["recipients"]
    with pytest.raises(ValueError):
        analytics.delivery_report(store, by=["weather"])


def test_campaign_postmortem_adds_up(synced):
    store, _ = synced
    listed = analytics.campaigns(store)
    assert len(listed) and (listed["batches"] > 1).all()
    pm = analytics.campaign_postmortem(store, listed["campaign"].iloc[0])
    funnel = pm.funnel.set_index("stage")["recipients"]
    assert funnel.is_monotonic_decreasing and funnel["recipients"] == pm.header["recipients"]
    assert funnel["delivered"] == pm.cost["delivered"] == pm.operators["delivered"].sum()
    assert pm.operators["recipients"].sum() == pm.header["recipients"]
    failed = pm.failure_reasons["recipients"].sum()
    assert failed + funnel["delivered"] == funnel["known"]
    assert pm.cost["cost_per_delivered"] == pytest.approx(pm.cost["credit_spent"] / pm.cost["delivered"])
    assert list(pm.time_to_final["statistic"][:2]) == ["median", "p90"]
    assert set(pm.replies.columns) >= {"sender", "content", "opt_out"}
    frame = pm.to_frame()
    assert {"header", "funnel", "cost", "baseline"} <= set(frame["section"])
    with pytest.raises(Exception, match="No campaign"):
        analytics.campaign_postmortem(store, "nothing")


def test_opt_outs_are_found_in_replies(synced):
    store, _ = synced
    found = 0
    for name in analytics.campaigns(store)["campaign"]:
        found += analytics.campaign_postmortem(store, name).opt_outs
    assert found > 0
    assert analytics._is_opt_out("لغو ۱۱") and analytics._is_opt_out("۱۱") and not analytics._is_opt_out("ممنون")


def _figures(store: Store, lang: str):
    day = analytics.delivery_report(store, by=["day"])
    operator = analytics.delivery_report(store, by=["operator"])
    pm = analytics.campaign_postmortem(store, analytics.campaigns(store)["campaign"].iloc[0])
    return [
        charts.outcome_distribution(day, lang),
        charts.delivery_rate_over_time(day, "day", lang),
        charts.operator_outcomes(operator, lang),
        charts.campaign_funnel(pm, lang),
        charts.time_to_final_cdf(pm, lang),
        charts.campaign_vs_baseline(pm, lang),
    ]


@pytest.mark.parametrize("lang", ["en", "fa"])
def test_charts_render_without_warnings(synced, lang, tmp_path):
    store, _ = synced
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a missing glyph or any other warning fails the test
        for k, figure in enumerate(_figures(store, lang)):
            figure.savefig(tmp_path / f"{k}.png")


def test_persian_title_has_text_pixels(synced, tmp_path):
    store, _ = synced
    figure = charts.outcome_distribution(analytics.delivery_report(store, by=[]), "fa")
    FigureCanvasAgg(figure).draw()
    title = figure.axes[0].title
    assert title.get_text() == charts.title("outcomes", "fa")
    box = title.get_window_extent()
    figure.savefig(tmp_path / "fa.png")  # the PNG a reader gets, at the figure's own dpi
    pixels = (image.imread(tmp_path / "fa.png")[:, :, :3] * 255).astype(int)
    height = pixels.shape[0]
    region = pixels[int(height - box.y1) : int(height - box.y0), int(box.x0) : int(box.x1)]
    assert region.size and (region.mean(axis=2) < 128).mean() > 0.005  # dark text where the title is (blank: 0)


def test_html_report_opens_in_chromium(synced, tmp_path):
    store, _ = synced
    path = write_report(store, tmp_path / "report", lang="fa")
    page = path.read_text(encoding="utf-8")
    assert '<html lang="fa" dir="rtl">' in page and page.count("data:image/png;base64,") == 7
    assert (tmp_path / "report" / "by_month.csv").exists() and (tmp_path / "report" / "outcomes.png").exists()
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it where apt-get can)")
    result = subprocess.run(
        [
            chromium,
            "--headless",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "گزارش تحویل پیامک" in result.stdout and result.stdout.count("<img") == 7
    console = [line for line in result.stderr.splitlines() if "CONSOLE" in line]
    assert console == [], console


def test_report_cli(synced, tmp_path):
    store, _ = synced
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "payamak_analytics.cli",
            "report",
            "--db",
            str(store.path),
            "--out",
            str(tmp_path),
            "--lang",
            "en",
            "--since",
            "2000-01-01",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("report.html")
    assert "SMS delivery report" in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_a_recipient_whose_outcome_is_unknown_is_beside_the_rate_never_under_it(synced, tmp_path):
    """Status 8 ("unknown") and a code the provider never documented tell nothing of delivery:
    they are counted as unknown, and neither the known outcomes nor the delivered rate move."""
    store, _ = synced
    copy = Store(shutil.copy(store.path, tmp_path / "copy.duckdb"))
    before = analytics.delivery_report(copy, by=[], in_flight_cutoff=None).iloc[0]
    batch, top = copy.sql('SELECT batch_id, max("row") FROM deliveries GROUP BY 1 ORDER BY 1 DESC LIMIT 1').iloc[0]
    with copy.transaction() as con:
        con.execute(
            """INSERT INTO deliveries (batch_id, "row", number, operator, status, final)
               VALUES (?, ?, '09120000001', 'MCI', 8, true), (?, ?, '09120000002', 'MCI', 42, false)""",
            [int(batch), int(top) + 1, int(batch), int(top) + 2],
        )
    after = analytics.delivery_report(copy, by=[], in_flight_cutoff=None).iloc[0]
    assert after["recipients"] == before["recipients"] + 2
    assert after["known"] == before["known"] and after["delivered_rate"] == before["delivered_rate"]
    assert after["unknown_total"] == before["unknown_total"] + 2

"""The three notebooks, executed headless (nbclient) against the simulator, outputs checked."""

from __future__ import annotations

import io
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import requests
from nbclient import NotebookClient

from payamak_analytics.analytics import MIN_KNOWN, campaign_postmortem, campaign_summary, delivery_report
from payamak_analytics.simulator import HistoryConfig, Simulator, WorldConfig
from payamak_analytics.store import Store

from .conftest import CHROMIUM_FLAGS, truth

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture(scope="module")
def account(tmp_path_factory):
    """A simulator the notebooks reach through PAYAMAK_* variables, and a store path for them."""
    with Simulator(
        WorldConfig(history=HistoryConfig(messages=1200, days=10), clock_speed=0.0), admin=True, threads=16
    ) as simulator:
        env = {
            **os.environ,
            "PAYAMAK_USERNAME": "demo",
            "PAYAMAK_PASSWORD": "demo",
            "PAYAMAK_WSDL": simulator.wsdl_url,
            "PAYAMAK_STORE": str(tmp_path_factory.mktemp("store") / "p.duckdb"),
        }
        yield simulator, env


def run(name: str, env: dict, after_cell=None) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    )
    with client.setup_kernel(env=env):
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
            if after_cell:
                after_cell(index, cell)
    return notebook


def text_of(cell) -> str:
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in cell.get("outputs", []))


def html_table(cell) -> pd.DataFrame:
    html = next(o["data"]["text/html"] for o in cell["outputs"] if "text/html" in o.get("data", {}))
    return pd.read_html(io.StringIO(html))[0]


def test_notebooks_are_saved_without_outputs():
    for path in NOTEBOOKS.glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        assert all(
            not c.get("outputs") and not c.get("execution_count") for c in notebook.cells if c.cell_type == "code"
        )
        assert notebook.cells[0].cell_type == "markdown"


def test_quickstart(account):
    simulator, env = account
    sends_after = {}

    def watch(index, cell):
        calls = truth(simulator, batches=0)["calls"]
        sends_after[index] = calls.get("SendSMS", 0)

    notebook = run("01_quickstart.ipynb", env, watch)
    code = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    dry_run, real_send, delivery, widget = code[2], code[3], code[4], code[5]
    assert "1,000,000 SMS" in text_of(notebook.cells[code[1]])
    assert "2 SMS would be charged" in text_of(notebook.cells[dry_run])  # one part, two numbers
    assert sends_after[dry_run] == 0  # the dry run sent nothing
    assert sends_after[real_send] == 1
    sent = [s for s in simulator.world.sends.values() if s.texts[0] == "سلام! این یک پیام آزمایشی است."]
    assert len(sent) == 1 and sent[0].numbers == ["09121234567", "09351234567"]
    assert text_of(notebook.cells[delivery]).startswith("-5 ")
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in notebook.cells[widget].outputs)


def test_delivery_report_notebook_matches_delivery_report(account):
    simulator, env = account
    notebook = run("02_delivery_report.ipynb", env)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert "calls" in text_of(code[0])
    assert "Sync at least daily" in text_of(code[1])
    shown = html_table(code[1])
    expected = delivery_report(Store(env["PAYAMAK_STORE"]), by=["month"])
    assert list(shown.columns)[:3] == ["Month", "Recipients", "Delivered"]  # labels, not snake_case
    assert shown["Month"].astype(str).tolist() == expected["month"].tolist()
    assert shown["Recipients"].tolist() == expected["recipients"].tolist()
    assert sum(shown["Recipients"]) == truth(simulator, batches=0)["recipients"]
    for cell, (rate, low, high, n) in zip(
        shown["Delivered (of known)"],
        expected[["delivered_rate", "rate_low", "rate_high", "known"]].itertuples(index=False),
    ):
        if n:
            assert cell == f"{rate:.1%} ({low * 100:.1f}–{high * 100:.1f}) of {n:,}"
    persian = html_table(code[5])
    assert "اپراتور" in persian.columns and not any("_" in str(c) for c in persian.columns)
    images = [o for c in code for o in c.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3


def test_campaign_postmortem_notebook_picks_the_weakest(account):
    _, env = account
    notebook = run("03_campaign_postmortem.ipynb", env)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    store = Store(env["PAYAMAK_STORE"])
    table = campaign_summary(store)
    judged = table[table["known"] >= MIN_KNOWN]
    rates = judged.set_index("campaign")["delivered"] / judged.set_index("campaign")["known"]
    weakest = rates.idxmin()
    assert f"weakest: {weakest} " in text_of(code[1])
    assert any("text/html" in o.get("data", {}) for o in code[1].outputs)  # the post-mortem's own HTML
    pm = campaign_postmortem(store, weakest)
    assert pm.summary() in text_of(code[5])


def test_jupyterlab_runs_the_quickstart_and_renders_the_send_widget(account, tmp_path):
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (make test installs it where apt-get can)")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    _, env = account
    shutil.copy(NOTEBOOKS / "01_quickstart.ipynb", tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = secrets.token_hex(16)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--ServerApp.token={token}",
            f"--ServerApp.root_dir={tmp_path}",
            "--allow-root",
        ],
        env={**env, "HOME": str(tmp_path)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.5)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium,
                args=CHROMIUM_FLAGS,
            )
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/lab/tree/01_quickstart.ipynb?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=90_000)
            page.wait_for_selector("text=Python 3 (ipykernel) | Idle", timeout=90_000)  # the kernel is connected
            for _ in range(3):  # a Run All that lands before the kernel settles runs nothing: ask again
                page.click("div.lm-MenuBar-itemLabel:text-is('Run')")
                page.click("li.lm-Menu-item:has-text('Run All Cells')")
                try:
                    page.wait_for_selector(".jp-InputPrompt:has-text('[1]')", timeout=20_000)
                    break
                except PlaywrightTimeout:
                    continue
            send = page.wait_for_selector(".jp-OutputArea .widget-button:has-text('Dry run')", timeout=120_000)
            assert send.is_visible()
            text_box = page.locator(".jp-OutputArea .payamak-auto-dir textarea").last
            assert text_box.evaluate("e => getComputedStyle(e).unicodeBidi") == "plaintext"  # dir="auto" for a textarea
            page.locator(".jp-OutputArea .widget-checkbox:has-text('Dry run') input").click()
            real = page.wait_for_selector(".jp-OutputArea .widget-button:has-text('Send 0 SMS')", timeout=30_000)
            assert "mod-danger" in (real.get_attribute("class") or "")
            page.locator(".jp-OutputArea .widget-checkbox:has-text('Dry run') input").click()
            page.wait_for_selector(".jp-OutputArea .widget-button:has-text('Dry run')", timeout=30_000)
            assert page.locator(".jp-OutputArea .widget-textarea").count() >= 2
            assert re.search(r"credit: [0-9,.]+ SMS", page.inner_text(".jp-Notebook"))  # the first cells ran too
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

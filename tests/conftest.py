"""Shared fixtures: simulators on loopback (real HTTP, real waitress) and clients of them."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
import zeep

from payamak_analytics import PanelClient
from payamak_analytics.simulator import FaultConfig, HistoryConfig, Simulator, WorldConfig

REFERENCE_WSDL = Path(__file__).resolve().parents[2] / "shared" / "contract" / "SendService.reference.wsdl"
# Debian's chromium, headless, as root, on a machine whose only network is loopback.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START = 1_764_000_000.0  # a fixed clock start (2025-11-24), so histories are the same on every run


def world_config(messages: int = 3000, *, frozen: bool = True, **history) -> WorldConfig:
    return WorldConfig(
        history=HistoryConfig(messages=messages, **history), start=START, clock_speed=0.0 if frozen else 1.0
    )


@pytest.fixture
def make_simulator():
    """Start simulators on free loopback ports; all are stopped when the test ends."""
    started: list[Simulator] = []

    def start(config: WorldConfig | None = None, faults: FaultConfig | None = None, **kwargs) -> Simulator:
        simulator = Simulator(config or world_config(), faults=faults, admin=True, **kwargs).start()
        started.append(simulator)
        return simulator

    yield start
    for simulator in started:
        simulator.stop()


@pytest.fixture
def simulator(make_simulator) -> Simulator:
    return make_simulator()


@pytest.fixture(scope="module")
def shared_simulator():
    """One read-only simulator for a whole module (tests using it must not send)."""
    with Simulator(world_config(), admin=True) as simulator:
        yield simulator


@pytest.fixture
def client(simulator) -> PanelClient:
    return PanelClient("demo", "demo", wsdl=simulator.wsdl_url, max_retry_wait=0.05)


def strict_zeep(simulator: Simulator) -> zeep.Client:
    return zeep.Client(simulator.wsdl_url, settings=zeep.Settings(strict=True))


def truth(simulator: Simulator, **params) -> dict:
    base = simulator.url.rsplit("/", 1)[0]
    return requests.get(f"{base}/_sim/truth", params=params, timeout=30).json()


def admin_post(simulator: Simulator, path: str, **params) -> dict:
    base = simulator.url.rsplit("/", 1)[0]
    response = requests.post(f"{base}/_sim/{path}", params=params, timeout=30)
    response.raise_for_status()
    return response.json()


def kill_during(process: subprocess.Popen, marker: str, rng: random.Random, window: float) -> bool:
    """SIGKILL `process` at a random moment up to `window` seconds after `marker` shows on its
    stderr (a progress bar's title), so that the kill lands in the middle of that work.
    Returns whether the marker was seen before the process ended."""
    seen, deadline = b"", time.monotonic() + 120
    descriptor = process.stderr.fileno()
    while marker.encode() not in seen and process.poll() is None and time.monotonic() < deadline:
        if select.select([descriptor], [], [], 0.2)[0]:
            seen += os.read(descriptor, 65536)
    time.sleep(rng.uniform(0, window))
    process.send_signal(signal.SIGKILL)
    process.wait()
    return marker.encode() in seen

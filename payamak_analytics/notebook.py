"""Notebook helpers: connect to the account, or to a built-in simulator when there is none."""

from __future__ import annotations

from pathlib import Path

from .client import PanelClient
from .errors import InputError

_simulators: list = []  # kept alive for the life of the kernel


def connect(*, days: int = 90, messages: int = 5_000) -> PanelClient:
    """A client of the account in PAYAMAK_USERNAME / PAYAMAK_PASSWORD (environment or .env).

    With no credentials, it starts the built-in simulator (a `days`-long history of `messages`
    records) and says so in one line, so that every notebook runs with no account.
    """
    try:
        return PanelClient()
    except InputError:
        from .simulator import HistoryConfig, Simulator, WorldConfig

        simulator = Simulator(WorldConfig(history=HistoryConfig(days=days, messages=messages)), admin=True).start()
        _simulators.append(simulator)
        print(
            f"No PAYAMAK_USERNAME / PAYAMAK_PASSWORD: using the built-in simulator at {simulator.url} "
            "(account demo; nothing leaves this machine)."
        )
        return PanelClient("demo", "demo", wsdl=simulator.wsdl_url)


def store_path() -> str:
    """Where the notebooks keep the local copy: PAYAMAK_STORE, else data/payamak.duckdb at the
    top of the project (the notebooks run from notebooks/)."""
    from .store import default_path

    return str(default_path(Path(__file__).resolve().parents[1]))

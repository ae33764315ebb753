"""Serving the simulator with waitress, in the background for tests and notebooks or in the
foreground for `payamak simulate`."""

from __future__ import annotations

import logging
import threading
from typing import Self

from waitress.server import create_server

from ..errors import InputError
from ..wsdl.contract import GENERATIONS
from .faults import DarkGate, FaultConfig, FaultyApp
from .soap import SERVICE_PATH, SoapApp
from .world import World, WorldConfig

# Under load waitress warns at every queued request; the simulator's users don't need that.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)


class Simulator:
    """A local panel on loopback. Use as a context manager; `wsdl_url` is what clients load.

    >>> with Simulator(admin=True) as sim:
    ...     client = PanelClient("demo", "demo", wsdl=sim.wsdl_url)
    """

    def __init__(
        self,
        world: World | WorldConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: FaultConfig | None = None,
        admin: bool = False,
        threads: int = 8,
        contract: str = "2022",
    ):
        if contract not in GENERATIONS:
            raise InputError(
                f"There is no contract generation {contract!r}; choose one of {', '.join(GENERATIONS)}.",
                "چنین نسلی از قرارداد سرویس وجود ندارد",
            )
        self.world = world if isinstance(world, World) else World(world, generation=contract)
        if self.world.generation != contract:
            raise InputError(
                f"The world produces the values of the {self.world.generation} contract but the simulator would "
                f"serve the {contract} one: build it as World(config, generation={contract!r}).",
                "نسل قرارداد جهان شبیه ساز با نسل سرویس یکی نیست",
            )
        app = SoapApp(self.world, admin=admin, contract=contract)
        self.faults = FaultyApp(app, faults) if faults and faults.any else None
        self._server = create_server(
            DarkGate(self.faults or app, self.world),
            host=host,
            port=port,
            threads=threads,
            clear_untrusted_proxy_headers=True,
            ident="SendService-simulator",
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = self._server.effective_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self._server.effective_port}{SERVICE_PATH}"

    @property
    def wsdl_url(self) -> str:
        return self.url + "?wsdl"

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (Ctrl-C)."""
        self._server.run()

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.run, name="payamak-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listening socket and every connection from inside the server's own loop."""
        if self._thread is None:
            return

        def close_all() -> None:
            for channel in list(self._server._map.values()):
                channel.close()

        try:
            self._server.trigger.pull_trigger(close_all)
        except OSError:  # its trigger is closed already: the loop cannot be woken, so close from here
            close_all()
        self._thread.join(timeout=5)
        self._thread = None
        self._server.task_dispatcher.shutdown(cancel_pending=True, timeout=2)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

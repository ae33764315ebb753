"""A local panel that speaks the real SendService contract: for tests, notebooks and demos.

The client never imports this package: it meets the simulator only over HTTP, as it would
meet the real service.
"""

from .faults import FaultConfig
from .history import HistoryConfig
from .server import Simulator
from .world import World, WorldConfig

__all__ = ["FaultConfig", "HistoryConfig", "Simulator", "World", "WorldConfig"]

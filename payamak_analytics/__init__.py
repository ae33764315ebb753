"""payamak_analytics: operate and analyse SMS sends through a Niazpardaz-family panel.

from payamak_analytics import PanelClient
client = PanelClient("user", "password")        # or PAYAMAK_USERNAME / PAYAMAK_PASSWORD
client.get_credit()
"""

from .client import RECEIVED, SENT, PanelClient
from .errors import PayamakError
from .notebook import connect

__all__ = ["PanelClient", "PayamakError", "RECEIVED", "SENT", "connect"]

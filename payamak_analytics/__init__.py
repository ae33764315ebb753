"""payamak_analytics: operate and analyse SMS sends through a Niazpardaz-family panel.

from payamak_analytics import PanelClient
client = PanelClient("user", "password")        # or PAYAMAK_USERNAME / PAYAMAK_PASSWORD
client.get_credit()
"""

from .client import RECEIVED, SENT, PanelClient
from .errors import PayamakError
from .notebook import connect

__all__ = ["RECEIVED", "SENT", "PanelClient", "PayamakError", "connect", "dlt_source"]


def dlt_source(client: PanelClient | None = None, **options):
    """A dlt source of the panel's history (one client, or accounts=a TOML file); see warehouse.source.

    dlt is imported only here, so the toolkit works without the `dlt` extra.
    """
    try:
        from .warehouse.source import payamak_source
    except ModuleNotFoundError as error:
        if error.name != "dlt":
            raise
        from .errors import UnsupportedOperationError

        raise UnsupportedOperationError(
            "dlt is not installed: pip install 'payamak_analytics[dlt]'.", "بسته dlt نصب نیست"
        ) from None
    return payamak_source(client, **options)

"""The client side of the wire: PanelClient, assembled from Settings, Wire and the readers.

Importing this package never loads the simulator: the client must work against the real
service and shares nothing with the simulator but the WSDL.
"""

from .columns import DELIVERY_DTYPES, MESSAGE_COLUMNS, MESSAGE_DTYPES, cast_deliveries, cast_messages
from .pages import Paged
from .panel import PanelClient
from .results import BatchSendResult, DeliveryPage, Message, MessagePage, Recipient, SendPlan, SendResult
from .settings import Settings
from .validate import DELIVERY_PAGE, MAX_RECIPIENTS, MESSAGES_PAGE, RECEIVED, SENT

__all__ = [
    "DELIVERY_DTYPES",
    "DELIVERY_PAGE",
    "MAX_RECIPIENTS",
    "MESSAGES_PAGE",
    "MESSAGE_COLUMNS",
    "MESSAGE_DTYPES",
    "RECEIVED",
    "SENT",
    "BatchSendResult",
    "DeliveryPage",
    "Message",
    "MessagePage",
    "Paged",
    "PanelClient",
    "Recipient",
    "SendPlan",
    "SendResult",
    "Settings",
    "cast_deliveries",
    "cast_messages",
]

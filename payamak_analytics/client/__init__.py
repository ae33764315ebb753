"""The client side of the wire: PanelClient and what it returns."""

from .panel import DELIVERY_PAGE, MAX_RECIPIENTS, MESSAGES_PAGE, RECEIVED, SENT, PanelClient
from .results import BatchSendResult, DeliveryPage, Message, MessagePage, Recipient, SendPlan, SendResult

__all__ = [
    "BatchSendResult",
    "DELIVERY_PAGE",
    "MAX_RECIPIENTS",
    "MESSAGES_PAGE",
    "DeliveryPage",
    "Message",
    "MessagePage",
    "PanelClient",
    "RECEIVED",
    "Recipient",
    "SENT",
    "SendPlan",
    "SendResult",
]

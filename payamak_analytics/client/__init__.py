"""The client side of the wire: PanelClient and what it returns."""

from .panel import RECEIVED, SENT, PanelClient
from .results import BatchSendResult, DeliveryPage, Message, MessagePage, Recipient, SendPlan, SendResult

__all__ = [
    "BatchSendResult",
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

"""The values only the latest generation of the service writes, drawn into the world it serves.

A deployment of the latest generation reports some recipients with the delivery statuses older
ones lack (12: no messenger account, where a 2022 deployment says 2, not delivered; 13: in the
panel's send queue, where it says -4, in the queue), targets some campaigns by age and gender
or birthday (send methods the 2022 schema lacks), and shows a like-to-like send as
`ManyToManyCalcCost` while its per-recipient cost is being worked out. Every draw is a pure
function of the seed and the record, and the latest world read through `Contract.reported_status`
is exactly the 2022 world: the same sends, the same outcomes, only named more finely.
"""

from __future__ import annotations

import numpy as np

from ..wsdl.contract import NEWER_DELIVERY_STATUSES
from .history import stable_hash, unit

GENERATION = "latest"
_SALT = 0x1A7E57
# Of the recipients a 2022 deployment reports as its older status, the share reported as the newer one.
STATUS_SHARES = {12: 0.2, 13: 0.5}
# Of the campaigns, the share sent with each newer method; the rest are Group sends.
CAMPAIGN_METHODS = (("AgeAndGender", 0.12), ("BirthdaySms", 0.06))
CALC_COST_SECONDS = 60.0  # how long a like-to-like send shows ManyToManyCalcCost


def delivery_statuses(seed: int, message_id, row, statuses: np.ndarray) -> np.ndarray:
    """The statuses a latest deployment reports for recipients a 2022 one reports as `statuses`."""
    statuses = np.asarray(statuses, dtype=np.int32)
    h = stable_hash(seed ^ _SALT, message_id, row)
    reported = statuses
    for salt, (newer, share) in enumerate(STATUS_SHARES.items()):
        older = NEWER_DELIVERY_STATUSES[newer]
        reported = np.where((statuses == older) & (unit(h, salt) < share), newer, reported)
    return reported.astype(np.int32)


def campaign_method(seed: int, campaign: int) -> str:
    """The send method of one campaign of the history, the same for each of its records."""
    draw = float(unit(stable_hash(seed ^ _SALT, campaign), 7)[0])
    for method, share in CAMPAIGN_METHODS:
        if draw < share:
            return method
        draw -= share
    return "Group"


def runtime_status(many_to_many: bool, age: float) -> str:
    """The MessageInfo Status of a send made at run time, `age` seconds after it went out."""
    return "ManyToManyCalcCost" if many_to_many and 0 <= age < CALC_COST_SECONDS else "Sent"

"""Envelopes of the integer-only calls (a report page, a delivery), built once by zeep and
filled per call: zeep builds an envelope in about half a millisecond, a fifth of a report
page's whole cost in the client, and a sync asks for tens of thousands of them.

The template is zeep's own output for the same operation and the same argument names, with a
marker number where each argument goes and where WS-Addressing's MessageID goes; a call fills
in the numbers (zeep writes an xsd integer as `str(value)`) and a new MessageID. Anything that
would make the two differ (an argument that is not an int, a marker zeep did not write exactly
once) leaves the call to zeep.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable

MESSAGE_ID = re.compile(rb"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def integers_only(params: dict) -> bool:
    return bool(params) and all(type(value) is int for value in params.values())


class EnvelopeTemplate:
    """One operation's envelope, split where its numbers and its MessageID go."""

    def __init__(self, parts: list[bytes], slots: list[str | None]):
        self.parts, self.slots = parts, slots  # slots[i] goes between parts[i] and parts[i + 1]

    @classmethod
    def build(cls, render: Callable[[dict], bytes], names: tuple[str, ...]) -> EnvelopeTemplate | None:
        """From `render(params)` (zeep's envelope as bytes), or None where it cannot be exact."""
        markers = {name: 10**17 + secrets.randbelow(10**17) for name in names}
        xml = render(markers)
        found: list[tuple[int, int, str | None]] = []
        for name, marker in markers.items():
            spots = [m.span() for m in re.finditer(rb"(?<!\d)%d(?!\d)" % marker, xml)]
            if len(spots) != 1:
                return None
            found.append((*spots[0], name))
        ids = [m.span() for m in MESSAGE_ID.finditer(xml)]
        if len(ids) > 1:
            return None
        found += [(start + len(b"urn:uuid:"), end, None) for start, end in ids]
        found.sort()
        parts, slots, at = [], [], 0
        for start, end, slot in found:
            parts.append(xml[at:start])
            slots.append(slot)
            at = end
        parts.append(xml[at:])
        return cls(parts, slots)

    def fill(self, params: dict) -> bytes:
        pieces = [self.parts[0]]
        for slot, part in zip(self.slots, self.parts[1:]):
            pieces.append(str(uuid.uuid4()).encode("ascii") if slot is None else b"%d" % params[slot])
            pieces.append(part)
        return b"".join(pieces)

"""Limits on members sharing one device or one delivery address (`risk.members_per_device`,
`risk.members_per_address`).

Each member seen with a value (a device id, an address hash) takes the next *seat* on it, in the
order events are recorded: the first member seen on a device has seat 1. A member whose seat is
beyond the limit is capped on every event that carries the value: the event is recorded and
credits nothing. With `members_per_device: 3`, the fourth account on a phone earns nothing there,
while the first three keep earning even after a fifth appears. The device is judged before the
address, so an event over both limits is answered `device_shared`.
"""

from __future__ import annotations

from collections.abc import Mapping

from loyalty.domain.rules import Limits

DEVICE_SHARED = "device_shared"
ADDRESS_SHARED = "address_shared"


def shared_reason(seats: Mapping[str, int], limits: Limits) -> str:
    """Why the event credits nothing ('' when it credits as usual). `seats` maps a link kind
    (`device`, `address`, `ip`) to the member's seat on the value the event carries."""
    if is_beyond(seats.get("device"), limits.members_per_device):
        return DEVICE_SHARED
    if is_beyond(seats.get("address"), limits.members_per_address):
        return ADDRESS_SHARED
    return ""


def is_beyond(seat: int | None, limit: int | None) -> bool:
    """Seat N+1 and later are beyond a limit of N; no seat (no value sent) or no limit: never."""
    return seat is not None and limit is not None and seat > limit

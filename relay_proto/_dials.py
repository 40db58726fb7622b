"""Per-tag bookkeeping for dials: legs, resolution and tombstones.

A ``DialRecord`` lives in the client's tag table from ``dial()`` until its grace period
after resolution has passed. Invariants:

* ``status`` moves PENDING -> ANSWERED or PENDING -> DEAD, never back.
* A leg's state only moves forward (``CallState.rank``); duplicates change nothing.
* While the record exists, no leg under its tag is ever left alive unless it is the
  winner handed to the caller: on a DEAD record every leg that is not ended gets exactly
  one ``calling.end``; on an ANSWERED record a non-winner leg that reaches ``answered``
  gets one too (the server normally cancels losers itself).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from ._events import CallState, Leg

JSONObject = dict[str, Any]


class DialStatus(enum.Enum):
    PENDING = "pending"
    ANSWERED = "answered"
    DEAD = "dead"


_NO_DEVICE: JSONObject = {}


@dataclass(slots=True)
class LegRecord:
    call_id: str
    node_id: str
    device: JSONObject
    state: CallState
    end_reason: str | None = None
    end_sent: bool = False

    def snapshot(self) -> Leg:
        return Leg(
            call_id=self.call_id,
            node_id=self.node_id,
            device=self.device,
            state=self.state,
            end_reason=self.end_reason,
        )


@dataclass(slots=True)
class DialRecord:
    tag: str
    request_id: str
    deadline: float
    max_duration: int | None
    status: DialStatus = DialStatus.PENDING
    #: When the record may be forgotten (set on resolution).
    expires: float | None = None
    winner: str | None = None
    #: False while the ``calling.dial`` frame waits for a socket.
    sent: bool = False
    legs: dict[str, LegRecord] = field(default_factory=dict)

    def legs_snapshot(self) -> tuple[Leg, ...]:
        """The legs for the event that resolves the dial (called once, at resolution).

        The record then becomes a tombstone, which needs only ids and states: the device
        objects (parsed JSON, now owned by the event) are let go, so that the tombstones
        of a busy client hold little and give the garbage collector little to walk.
        """
        legs = tuple([leg.snapshot() for leg in self.legs.values()])  # a list: no generator
        for leg in self.legs.values():
            leg.device = _NO_DEVICE
        return legs

    def needs_end(self, leg: LegRecord) -> bool:
        """Whether ``leg`` must be ended now to keep the no-orphan promise."""
        if leg.end_sent or leg.state.rank >= CallState.ENDING.rank:
            return False
        if self.status is DialStatus.DEAD:
            return True
        return (
            self.status is DialStatus.ANSWERED
            and leg.call_id != self.winner
            and leg.state is CallState.ANSWERED
        )


def end_reason_for(leg: LegRecord) -> str:
    """``cancel`` while a leg has not been answered, ``hangup`` once it has."""
    return "hangup" if leg.state is CallState.ANSWERED else "cancel"

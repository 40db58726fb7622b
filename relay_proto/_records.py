"""What the tracker keeps (dial, leg and call records) and what it returns (intents).

Records are plain mutable slots owned by ``_tracker.CallTracker``; nothing outside the
tracker mutates them. Intents are small frozen values the tracker hands back to the
connection, which turns them into frames: the tracker never writes a frame nor calls back
into the session. The field readers here turn inbound params into checked values and
raise ``RemoteProtocolError`` on anything malformed, before any record is touched.

Invariants: a record's ``status``/``state`` only changes through the tables of ``_state``;
``legs_snapshot`` is taken once, when the dial resolves, and lets go of device objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import RemoteProtocolError
from ._events import CallInfo, CallState, DialFailed, DialFailureCause, Leg
from ._state import DialStatus
from ._timers import Timer
from ._wire import JSONObject

# ---------------------------------------------------------------------------- intents


@dataclass(frozen=True, slots=True)
class EndLeg:
    """Queue an internal ``calling.end`` (re-sent after a reconnect until answered).

    ``max_duration``: the call reached its ``max_duration``; the connection reports
    ``MaxDurationReached`` with the hang-up's request id.
    """

    node_id: str
    call_id: str
    reason: str
    max_duration: bool = False


@dataclass(frozen=True, slots=True)
class Withdraw:
    """Do not send this request if it has not gone out yet (an abandoned dial)."""

    request_id: str


Intent = EndLeg | Withdraw

# ---------------------------------------------------------------------------- records

#: A timer's payload: a dial's tag (its deadline while the dial is pending, then its
#: tombstone: ``DialRecord.timer``), or ``("max_duration", call_id)``. The tag alone, not a
#: (kind, tag) pair: every dial has these timers, and a tuple each is an object per dial
#: held for the tombstone grace.
TimerKey = str | tuple[str, str]
_NO_DEVICE: JSONObject = {}


@dataclass(slots=True)
class TrackedCall:
    call_id: str
    node_id: str
    tag: str | None
    device: JSONObject
    direction: str
    state: CallState
    context: str | None
    raw: JSONObject
    max_duration: Timer[TimerKey] | None = None

    def info(self) -> CallInfo:
        return CallInfo(
            call_id=self.call_id,
            node_id=self.node_id,
            tag=self.tag,
            device=self.device,
            direction=self.direction,
            state=self.state,
            context=self.context,
            raw=self.raw,
        )


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
    max_duration: int | None
    status: DialStatus = DialStatus.PENDING
    #: The dial deadline while pending, then the tombstone's expiry.
    timer: Timer[TimerKey] | None = None
    winner: str | None = None
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

    def failed(
        self,
        cause: DialFailureCause,
        message: str,
        *,
        code: int | None = None,
        reason: str | None = None,
        source: str | None = None,
    ) -> DialFailed:
        """The ``DialFailed`` that resolves this dial (takes the legs' snapshot)."""
        return DialFailed(
            tag=self.tag,
            cause=cause,
            code=code,
            message=message,
            reason=reason,
            source=source,
            legs=self.legs_snapshot(),
        )


# ---------------------------------------------------------------------------- field readers


def str_field(params: Mapping[str, Any], name: str, where: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise RemoteProtocolError(f"{where}: missing or invalid {name!r}")
    return value


def malformed(params: Mapping[str, Any], where: str, names: tuple[str, ...]) -> Exception:
    """The error for the first of ``names`` that is not a non-empty string."""
    for name in names[:-1]:
        value = params.get(name)
        if not isinstance(value, str) or not value:
            break
    else:
        name = names[-1]
    return RemoteProtocolError(f"{where}: missing or invalid {name!r}")


def opt_str(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    return value if isinstance(value, str) else None


def device_of(params: Mapping[str, Any]) -> JSONObject:
    device = params.get("device")
    return device if isinstance(device, dict) else {}


CALL_STATES = {state.value: state for state in CallState}


def call_state(where: str, raw_state: str) -> CallState:
    state = CALL_STATES.get(raw_state)
    if state is None:
        raise RemoteProtocolError(f"{where}: unknown call_state {raw_state!r}")
    return state


def read_call_state(params: Mapping[str, Any]) -> CallState:
    """The state of a ``calling.call.state`` whose ``call_id`` and ``node_id`` are checked.

    The hottest reader of the client: plain type checks and the table lookup first, the
    precise error only when they fail.
    """
    call_id = params.get("call_id")
    node_id = params.get("node_id")
    raw_state = params.get("call_state")
    state = CALL_STATES.get(raw_state) if type(raw_state) is str else None
    if not (type(call_id) is str and call_id and type(node_id) is str and node_id and state):
        where, names = "calling.call.state", ("call_id", "node_id", "call_state")
        if isinstance(raw_state, str) and all(opt_str(params, name) for name in names[:2]):
            raise RemoteProtocolError(f"{where}: unknown call_state {raw_state!r}")
        raise malformed(params, where, names)
    return state

"""What the tracker keeps (dial, leg and call records) and what it returns (intents).

Records are plain mutable slots owned by ``_tracker.CallTracker``; nothing outside the
tracker mutates them. Intents are small frozen values the tracker hands back to the
connection, which turns them into frames: the tracker never writes a frame nor calls back
into the session. The field readers here turn inbound params into checked values,
report unknown state values (``UnknownState``) and raise ``RemoteProtocolError`` on anything
that cannot be read, before any record is touched (the connection reports that as an
``UnreadableEvent``).

Invariants: a record's ``status``/``state`` only changes through the tables of ``_state``;
``legs_snapshot`` is taken once, when the dial resolves, and lets go of device objects.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._errors import RemoteProtocolError
from ._events import CallInfo, CallState, DialFailed, DialFailureCause, Leg, PlayState, UnknownState
from ._making import call_info, new_leg
from ._state import DialStatus
from ._timers import TimerHandle
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


@dataclass(frozen=True, slots=True)
class StopAction:
    """Queue an internal ``<control method>`` stop for an action nobody waits for (its start
    was given up after the server accepted it); re-sent after a reconnect until answered."""

    node_id: str
    call_id: str
    method: str
    control_id: str


Intent = EndLeg | Withdraw | StopAction

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
    max_duration: TimerHandle | None = None

    def info(self) -> CallInfo:
        return call_info(  # ``CallInfo(...)``, made quicker (``_making``)
            self.call_id,
            self.node_id,
            self.tag,
            self.device,
            self.direction,
            self.state,
            self.context,
            self.raw,
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
        return new_leg(self.call_id, self.node_id, self.device, self.state, self.end_reason)


@dataclass(slots=True)
class DialRecord:
    tag: str
    request_id: str
    max_duration: int | None
    status: DialStatus = DialStatus.PENDING
    #: The dial deadline while pending, then the tombstone's expiry.
    timer: TimerHandle | None = None
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
PLAY_STATES = {state.value: state for state in PlayState}


def unknown_state(event_type: str, key: str, raw_state: str, params: JSONObject) -> UnknownState:
    """The report of a state value this client does not know (it changes nothing)."""
    return UnknownState(
        event_type=event_type,
        key=key,
        raw_state=raw_state,
        call_id=opt_str(params, "call_id"),
        tag=opt_str(params, "tag"),
        control_id=opt_str(params, "control_id"),
        params=params,
    )


#: ``known_node_id(call_id, tag)``: the node of a call or leg the client knows, or None.
KnownNode = Callable[[str, str | None], str | None]


def known_node_id(
    calls: Mapping[str, TrackedCall], dials: Mapping[str, DialRecord], call_id: str, tag: str | None
) -> str | None:
    """The node of a call of the session, or of a leg seen under ``tag``, if known."""
    call = calls.get(call_id)
    if call is not None:
        return call.node_id
    record = None if tag is None else dials.get(tag)
    leg = None if record is None else record.legs.get(call_id)
    return None if leg is None else leg.node_id


def read_call_state_slow(
    params: JSONObject, known_node_id: KnownNode
) -> tuple[str, str, CallState] | UnknownState:
    """The rare path of ``calling.call.state`` (PROTOCOL.md 2.6, docs/reading.md), taken when
    the tracker's own plain checks find something missing, invalid or unknown.

    ``(call_id, node_id, state)`` with a missing ``node_id`` taken from the known call or
    leg; ``UnknownState`` for a state this client does not know; ``RemoteProtocolError``
    when the event cannot be read (no ``call_id``, no ``call_state``, or no ``node_id``
    for a call the client does not know).
    """
    where = "calling.call.state"
    call_id = str_field(params, "call_id", where)
    raw_state = str_field(params, "call_state", where)
    state = CALL_STATES.get(raw_state)
    if state is None:
        return unknown_state(where, "call_state", raw_state, params)
    node_id = known_node(
        params.get("node_id"), call_id, opt_str(params, "tag"), known_node_id, where
    )
    return call_id, node_id, state


def known_node(
    node_id: Any, call_id: str, tag: str | None, known_node_id: KnownNode, where: str
) -> str:
    """``node_id`` if it is one, else the node of the call or leg the client knows."""
    if type(node_id) is str and node_id:
        return node_id
    known = known_node_id(call_id, tag)
    if known is None:
        raise RemoteProtocolError(f"{where}: no 'node_id', and call {call_id!r} is not known")
    return known

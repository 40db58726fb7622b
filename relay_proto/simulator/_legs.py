"""The simulated switch's values: call legs, dials, plays, their snapshots and signals.

Plain state holders with no behaviour beyond encoding their own event params (through
``_wire``); ``_switch.Switch`` moves them. Invariants (kept by the switch): a ``Leg``'s
``json`` pieces never change after construction; ``timer`` is the leg's one pending timer;
``Dial.active`` holds the legs of the current group that have not ended; a ``Bridge``
(moved by ``_bridge.Bridges``) is referred to by its legs only while it is up.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from .. import _wire as wire
from .._events import CallState, PlayState
from .._timers import TimerHandle
from .._wire import JSONObject
from ._script import CallScript

#: ``"answered"`` as JSON text, for the winner of a dial event (encoded once).
_ANSWERED_JSON = wire.encode_string(CallState.ANSWERED.value)

__all__ = [
    "Action",
    "Bridge",
    "Dial",
    "EventSink",
    "Leg",
    "LiveAction",
    "LiveCall",
    "Play",
    "RpcError",
    "TimerCallback",
]

#: What the simulator's timers carry: called with the timer's own deadline.
TimerCallback = Callable[[float], None]


class EventSink(Protocol):
    """Where a call's events go: the session that owns it."""

    @property
    def protocol(self) -> str: ...

    @property
    def project(self) -> str: ...

    def emit(self, event_type: str, params_json: str, timestamp: float) -> None:
        """Queue an event whose ``params`` object is already JSON text."""


class RpcError(Exception):
    """Answer the request with this JSON-RPC error object (not a rule failure)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveCall:
    """A snapshot of one simulated call leg (for assertions and the simulator's CLI)."""

    call_id: str
    node_id: str
    tag: str
    device: JSONObject
    state: CallState
    direction: str
    protocol: str
    end_reason: str | None = None
    context: str | None = None


class Dial:
    __slots__ = (
        "active",
        "bridge",
        "groups",
        "index",
        "max_duration",
        "node_id",
        "pinned",
        "sink",
        "tag",
    )

    def __init__(
        self,
        sink: EventSink,
        tag: str,
        node_id: str,
        groups: list[list[JSONObject]],
        max_duration: int | None,
    ) -> None:
        self.sink = sink
        self.tag = tag
        self.node_id = node_id
        self.groups = groups
        self.max_duration = max_duration
        self.index = 0
        self.active: dict[str, Leg] = {}
        #: The ``node_id`` the dial asked for (every leg goes there), else None.
        self.pinned: str | None = None
        #: The connect this dial rings the peer legs of (None: a ``calling.dial``).
        self.bridge: Bridge | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LiveAction:
    """A snapshot of one running action (record, collect, tap, ...) of a live call."""

    call_id: str
    control_id: str
    verb: str
    state: str


class Leg:
    __slots__ = (
        "actions",
        "bridge",
        "call_id",
        "context",
        "device",
        "dial",
        "direction",
        "end_reason",
        "hangup_after",
        "inputs_taken",
        "json",
        "max_duration",
        "node_id",
        "peer_json",
        "plays",
        "script",
        "segment_id",
        "sink",
        "state",
        "tag",
        "timer",
    )

    def __init__(
        self,
        *,
        call_id: str,
        node_id: str,
        tag: str,
        device: JSONObject,
        direction: str,
        sink: EventSink,
        state: CallState,
        segment_id: str,
        context: str | None = None,
    ) -> None:
        self.call_id = call_id
        self.segment_id = segment_id
        self.node_id = node_id
        self.tag = tag
        self.device = device
        self.direction = direction
        self.sink = sink
        self.state = state
        self.context = context
        self.end_reason: str | None = None
        self.dial: Dial | None = None
        self.timer: TimerHandle | None = None
        self.hangup_after: float | None = None
        self.max_duration: float | None = None
        self.plays: dict[str, Play] = {}
        #: The connect this leg takes part in: as the connecting call from ``connecting``
        #: on, as the peer once ``connected``; None otherwise.
        self.bridge: Bridge | None = None
        #: ``,"peer":{...}`` added to this leg's state events while it is bridged.
        self.peer_json: str | None = None
        #: Running actions other than plays, by control_id (``_actions``).
        self.actions: dict[str, Action] = {}
        #: The far end's script when fixed for this call (an injected inbound call's);
        #: ``None``: read from the scenario by destination when an action needs it.
        self.script: CallScript | None = None
        #: How many collects of this call have taken an input from the script.
        self.inputs_taken = 0
        self.json = wire.leg_json(call_id, node_id, tag, direction, device, segment_id)

    def winner_params(self) -> str:
        """This leg as the ``call`` of an ``answered`` dial event (it may be sent before the
        leg's own ``answered`` state event: the ``dial_event_first`` fault)."""
        return wire.leg_state_params(self.json, _ANSWERED_JSON, None, self.context)

    def snapshot(self) -> LiveCall:
        return LiveCall(
            call_id=self.call_id,
            node_id=self.node_id,
            tag=self.tag,
            device=self.device,
            state=self.state,
            direction=self.direction,
            protocol=self.sink.protocol,
            end_reason=self.end_reason,
            context=self.context,
        )


class Play:
    __slots__ = ("call", "control_id", "remaining", "started", "state", "timer")

    def __init__(self, call: Leg, control_id: str, seconds: float, now: float) -> None:
        self.call = call
        self.control_id = control_id
        self.remaining = seconds
        self.started = now
        self.state = PlayState.PLAYING
        self.timer: TimerHandle | None = None


class Bridge:
    """One ``calling.connect`` of ``call``: ``connecting`` while ``dial`` rings the peer
    legs, ``connected`` with ``peer`` once one answers; gone (no leg refers to it) once
    it is ``disconnected`` or ``failed``."""

    __slots__ = ("call", "dial", "peer", "state", "tag")

    def __init__(self, call: Leg, tag: str | None) -> None:
        self.call = call
        self.tag = tag
        self.state = "connecting"
        self.dial: Dial | None = None
        self.peer: Leg | None = None


class Action(abc.ABC):
    """One running action of a call (any verb but play): the record the generic action
    engine (``_actions``) moves. A verb subclasses it for its own data and implements
    ``halt``. ``timer`` is its one pending timer; ``deadline``/``step`` what it will do
    then; ``remaining`` the time left while paused."""

    __slots__ = ("call", "control_id", "deadline", "remaining", "state", "step", "timer", "verb")

    def __init__(self, call: Leg, control_id: str, verb: str, state: str) -> None:
        self.call = call
        self.control_id = control_id
        self.verb = verb
        self.state = state
        self.timer: TimerHandle | None = None
        self.deadline = 0.0
        self.step: TimerCallback | None = None
        self.remaining: float | None = None

    @abc.abstractmethod
    def halt(self, reason: str, now: float) -> None:
        """Send this action's terminal event: ``reason`` is ``"stop"`` (a ``.stop``
        request) or ``"ended"`` (its call is ending). The engine then forgets it."""

    def snapshot(self) -> LiveAction:
        return LiveAction(
            call_id=self.call.call_id, control_id=self.control_id, verb=self.verb, state=self.state
        )

"""Values the client core hands back: states, snapshots and events.

Every event is a frozen, slotted dataclass that is complete at construction. ``Event`` is a
closed union, so ``match event: ... case _: assert_never(event)`` is exhaustive. Events
that come from the wire keep the server's inner params in ``raw`` as an escape hatch.
The state enums are ``StrEnum``s: each member equals its wire string
(``CallState.ANSWERED == "answered"``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from ._results import ActionResult, ConnectState

JSONObject = dict[str, Any]


class SessionState(enum.StrEnum):
    """Where the session stands.

    ``IDLE``: no socket (before the first ``connect()`` or after ``connection_lost()``).
    ``CONNECTING``: ``signalwire.connect`` is on its way. ``READY``: requests flow.
    ``DRAINING``: the server asked us to disconnect; new requests wait for the next socket.
    """

    IDLE = "idle"
    CONNECTING = "connecting"
    READY = "ready"
    DRAINING = "draining"


class CallState(enum.StrEnum):
    """A call leg's state. States only move forward (``rank`` order); some may be skipped."""

    CREATED = "created"
    RINGING = "ringing"
    ANSWERED = "answered"
    ENDING = "ending"
    ENDED = "ended"

    #: Position in the forward order (``CREATED`` is 0); a plain attribute, since it is
    #: compared on every state event.
    rank: int

    def __init__(self, value: str) -> None:
        self.rank = len(type(self).__members__)


class PlayState(enum.StrEnum):
    """A play action's state. ``FINISHED`` and ``ERROR`` are terminal."""

    PLAYING = "playing"
    PAUSED = "paused"
    FINISHED = "finished"
    ERROR = "error"

    @property
    def terminal(self) -> bool:
        return self in (PlayState.FINISHED, PlayState.ERROR)


class DialFailureCause(enum.StrEnum):
    """Why a dial failed (a timeout is its own event, ``DialTimedOut``)."""

    #: The server reported ``dial_state: failed`` (every leg ended unanswered).
    FAILED = "failed"
    #: The server refused the ``calling.dial`` request (error object or non-2xx code).
    REFUSED = "refused"
    #: The session was lost and the server did not restore it.
    CONNECTION_LOST = "connection_lost"


@dataclass(frozen=True, slots=True, kw_only=True)
class Leg:
    """One leg seen under a dial's tag, as last reported."""

    call_id: str
    node_id: str
    device: JSONObject
    state: CallState
    end_reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CallInfo:
    """A snapshot of a call known to the core."""

    call_id: str
    node_id: str
    tag: str | None
    device: JSONObject
    direction: str
    state: CallState
    context: str | None = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)


# ---------------------------------------------------------------------------- session


@dataclass(frozen=True, slots=True, kw_only=True)
class Connected:
    """``signalwire.connect`` succeeded.

    ``session_restored`` is true when a resume was asked for and granted: pending dials,
    calls and plays carry on. When a resume was asked for and refused, the events that
    fail what was lost (``DialFailed``, ``CallLost``, ``RequestFailed``) follow this one.
    """

    protocol: str
    identity: str | None
    session_restored: bool
    resume_requested: bool
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectFailed:
    """``signalwire.connect`` was answered with an error.

    ``retry_fresh`` is true when stored resume state was sent and the failure code says it
    was stale (-32002/-32003/-32602): the core has forgotten that state, and a fresh
    ``connect()`` on the same socket may succeed. Otherwise the credentials were refused.
    """

    code: int
    message: str
    retry_fresh: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class DisconnectRequested:
    """The server sent ``signalwire.disconnect`` (already acknowledged).

    Requests now wait for the next socket. ``restart`` true means the next connect starts
    a fresh session; otherwise it resumes.
    """

    restart: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class LivenessLost:
    """Pings went unanswered or the server fell silent: treat the socket as dead."""

    reason: str


# ---------------------------------------------------------------------------- dials


@dataclass(frozen=True, slots=True, kw_only=True)
class DialAnswered:
    """The dial was answered; ``call`` is the winning leg (state ``ANSWERED``)."""

    tag: str
    call: CallInfo
    legs: tuple[Leg, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DialFailed:
    """The dial ended without an answer. ``legs`` lists every leg with its end reason."""

    tag: str
    cause: DialFailureCause
    code: int | None
    message: str
    reason: str | None
    source: str | None
    legs: tuple[Leg, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DialTimedOut:
    """The dial's deadline passed. ``calling.end`` has been queued for every leg seen."""

    tag: str
    legs: tuple[Leg, ...]


# ---------------------------------------------------------------------------- calls


@dataclass(frozen=True, slots=True, kw_only=True)
class CallStateChanged:
    """A known call moved forward. Duplicates and backward moves are never reported.

    Reported for calls handed over (``DialAnswered``, ``InboundCall``) and for every leg
    seen under a dial's tag (``tag`` set), including losers and legs of a dial already
    resolved or abandoned: those are progress reports only, never calls of the session
    (the core ends them if they must be ended).
    """

    call_id: str
    node_id: str
    tag: str | None
    state: CallState
    previous: CallState | None
    end_reason: str | None
    timestamp: float | None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CallLost:
    """The core no longer tracks this call.

    ``gone`` is true when the server answered a command for it with 404/410 (the call no
    longer exists); false when the session it lived in was not restored (the core has
    queued a hang-up for it all the same). ``passed`` is true when the server accepted its
    ``calling.pass``: the call lives on, offered to another consumer, and is no longer this
    session's (nothing was hung up).
    """

    call_id: str
    gone: bool = False
    passed: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class MaxDurationReached:
    """The call reached its ``max_duration``; the core has queued ``calling.end``."""

    call_id: str
    request_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundCall:
    """A call arrived on one of the client's contexts (``calling.call.receive``)."""

    call: CallInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionStateChanged:
    """Progress of an action (a verb with a ``control_id``: play, record, collect, ...).

    ``state`` is the wire string (a ``StrEnum`` member where the verb has one), or
    ``call_ended`` when the call ended before the action's own final event. ``done`` is true
    exactly once, on the event that ends the action. ``settled`` is true exactly once, on the
    event that gives its answer (a final collect result, the first detection, or the end),
    never after ``done``. ``result`` is the typed reading of the event (``_results``), or
    None for plain progress. Duplicates are never reported.
    """

    call_id: str
    control_id: str
    verb: str
    state: str
    done: bool = False
    settled: bool = False
    result: ActionResult | None = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlayStateChanged(ActionStateChanged):
    """Progress of a play (``calling.call.play``), or of the prompt of a
    ``play_and_collect`` (then ``verb`` is ``play_and_collect`` and it never ends it)."""

    verb: str = "play"
    state: PlayState


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectStateChanged:
    """Progress of a bridge (``calling.call.connect``), deduplicated.

    ``peer`` is the other leg once the server names it (from ``connected`` on): it is a call
    of the session from then on (tracked, and hung up on the same rules as any call).
    ``reason``/``source`` come with ``failed``.
    """

    call_id: str
    state: ConnectState
    peer: CallInfo | None
    reason: str | None = None
    source: str | None = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageInfo:
    """A message as the server described it (``messaging.receive`` / ``messaging.state``)."""

    message_id: str
    context: str | None
    direction: str
    from_number: str | None
    to_number: str | None
    body: str | None
    media: tuple[str, ...]
    tags: tuple[str, ...]
    segments: int | None
    state: str
    reason: str | None = None
    raw: JSONObject = field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageStateChanged:
    """A sent message moved forward (``messaging.state``); ``done`` on a final state
    (delivered, undelivered, failed). Duplicates and backward moves are never reported."""

    message: MessageInfo
    done: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundMessage:
    """A message arrived on one of the client's contexts (``messaging.receive``)."""

    message: MessageInfo


@dataclass(frozen=True, slots=True, kw_only=True)
class UnhandledEvent:
    """A ``signalwire.event`` the core does not interpret (already acknowledged)."""

    event_type: str
    timestamp: float | None
    params: JSONObject = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnknownState:
    """An event carried a state this client does not know (acknowledged; PROTOCOL.md 2.6).

    The sets of call, play and dial states are open: an unknown value is carried here and
    changes nothing (the call, play or dial stays as it was). ``key`` names the field
    (``call_state``, ``state`` or ``dial_state``), ``raw_state`` is the value as sent, and
    the ids are those the event carried.
    """

    event_type: str
    key: str
    raw_state: str
    call_id: str | None
    tag: str | None
    control_id: str | None
    params: JSONObject = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class UnreadableEvent:
    """A ``signalwire.event`` the client could not read (acknowledged; nothing changed).

    ``reason`` says what was missing or wrong (see docs/reading.md for which absences are
    fatal); ``event_type`` is None when the envelope did not carry one as a string;
    ``params`` is what the event carried (its inner params, or the whole envelope when
    those were not an object).
    """

    event_type: str | None
    reason: str
    params: Any = field(repr=False)


# ---------------------------------------------------------------------------- requests


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestSucceeded:
    """A request made through the core got a successful reply."""

    request_id: str
    method: str
    result: JSONObject = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestFailed:
    """A request failed: an error reply, a non-2xx ``code``, or a lost connection.

    ``call_gone`` is true for 404/410 from a call command (the call no longer exists; a
    ``CallLost`` follows if the core still tracked it). ``connection_lost`` is true when the
    socket went away before the reply arrived (replies are not re-delivered, even when the
    session is restored) or when the call the request was waiting to reach was lost with
    the session; ``code`` is then -1.
    """

    request_id: str
    method: str
    code: int
    message: str
    data: Any = field(default=None, repr=False)
    call_gone: bool = False
    connection_lost: bool = False


Event = (
    Connected
    | ConnectFailed
    | DisconnectRequested
    | LivenessLost
    | DialAnswered
    | DialFailed
    | DialTimedOut
    | CallStateChanged
    | CallLost
    | MaxDurationReached
    | InboundCall
    | ActionStateChanged
    | ConnectStateChanged
    | MessageStateChanged
    | InboundMessage
    | UnhandledEvent
    | UnknownState
    | UnreadableEvent
    | RequestSucceeded
    | RequestFailed
)

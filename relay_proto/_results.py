"""What an action gives back: the typed results of the call-control verbs, and their states.

Each result is a frozen, slotted value read from one ``calling.call.<verb>`` event. It keeps
the event's inner params in ``params`` for the fields it does not type, so nothing the
server sent is lost. The state enums are ``StrEnum``s: each member equals its wire string
(``RecordState.FINISHED == "finished"``). The sets of states are open: a value this client
does not know is carried as ``UnknownState`` by the core and changes nothing.

The readers here are pure: ``(inner params) -> Reading`` or ``RemoteProtocolError`` when an
event cannot be read at all. Which verb reads which way is a column of ``_actions.VERBS``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ._errors import RemoteProtocolError
from ._wire import JSONObject

#: The state of an action whose call ended before its own final event (every verb).
CALL_ENDED = "call_ended"


class RecordState(enum.StrEnum):
    RECORDING = "recording"
    PAUSED = "paused"
    FINISHED = "finished"
    NO_INPUT = "no_input"


class CollectKind(enum.StrEnum):
    """What a collect heard (``result.type`` on the wire)."""

    DIGIT = "digit"
    SPEECH = "speech"
    NO_INPUT = "no_input"
    NO_MATCH = "no_match"
    ERROR = "error"
    START_OF_INPUT = "start_of_input"


class DetectKind(enum.StrEnum):
    MACHINE = "machine"
    FAX = "fax"
    DIGIT = "digit"


class ConnectState(enum.StrEnum):
    """A bridge's state (``connect_state`` of ``calling.call.connect``)."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in (ConnectState.DISCONNECTED, ConnectState.FAILED)


class MessageState(enum.StrEnum):
    QUEUED = "queued"
    INITIATED = "initiated"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    RECEIVED = "received"

    @property
    def terminal(self) -> bool:
        return self in (MessageState.DELIVERED, MessageState.UNDELIVERED, MessageState.FAILED)

    #: Position in the forward order; the three terminal states share the last rank.
    rank: int

    def __init__(self, value: str) -> None:
        self.rank = min(len(type(self).__members__), 3)


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionResult:
    """What an action reported: its ``verb``, its ``state`` (a wire string) and the raw
    inner ``params`` of the event it was read from (empty when the call ended first)."""

    verb: str
    state: str
    params: JSONObject = field(default_factory=dict, repr=False, compare=False)

    @property
    def call_ended(self) -> bool:
        """Whether the call ended before the action's own final event."""
        return self.state == CALL_ENDED


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordResult(ActionResult):
    url: str | None = None
    duration: float | None = None
    size: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectResult(ActionResult):
    """``kind``: digit, speech, no_input, no_match, error or start_of_input; ``final`` is
    false for a partial result (more is to come)."""

    kind: str
    final: bool = True
    digits: str | None = None
    terminator: str | None = None
    text: str | None = None
    confidence: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DetectResult(ActionResult):
    """``kind``: machine, fax or digit; ``result``: what was detected (MACHINE, HUMAN,
    UNKNOWN, READY, NOT_READY, CED, CNG, the digits), or None if nothing was."""

    kind: str | None = None
    result: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TapResult(ActionResult):
    tap: JSONObject = field(default_factory=dict)
    device: JSONObject = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class SendDigitsResult(ActionResult):
    pass


@dataclass(frozen=True, slots=True, kw_only=True)
class FaxResult(ActionResult):
    """``state``: page, finished or error (``fax.type``); the rest from ``fax.params``."""

    pages: int | None = None
    document: str | None = None
    success: bool | None = None


# ---------------------------------------------------------------------------- readers


class Reading(NamedTuple):
    """One action event, read: its state, its result (None for plain progress) and
    whether it gives the action's answer (``settles``: a final collect result, the first
    detection) apart from ending it."""

    state: str
    result: ActionResult | None
    settles: bool = False
    #: Read from a ``result`` (a collect's), not from a state: then only ``settles`` may end
    #: the action (a continuous collect goes on through no_input and no_match).
    from_result: bool = False


#: ``reader(verb, inner_params, terminal_states)``.
Reader = Callable[[str, JSONObject, frozenset[str]], Reading]


def _str(params: Any, name: str) -> str | None:
    value = params.get(name) if isinstance(params, dict) else None
    return value if isinstance(value, str) else None


def _num(params: Any, name: str) -> float | None:
    value = params.get(name) if isinstance(params, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _state(verb: str, params: JSONObject) -> str:
    state = params.get("state")
    if type(state) is not str or not state:
        raise RemoteProtocolError(f"calling.call.{verb}: missing or invalid 'state'")
    return state


def read_plain(verb: str, params: JSONObject, terminal: frozenset[str]) -> Reading:
    """``state`` only (play, send_digits, stream, transcribe, pay, ...): a result at the end."""
    state = _state(verb, params)
    if state in terminal:
        return Reading(state, ActionResult(verb=verb, state=state, params=params))
    return Reading(state, None)


def read_send_digits(verb: str, params: JSONObject, terminal: frozenset[str]) -> Reading:
    state = _state(verb, params)
    if state in terminal:
        return Reading(state, SendDigitsResult(verb=verb, state=state, params=params))
    return Reading(state, None)


def read_record(verb: str, params: JSONObject, terminal: frozenset[str]) -> Reading:
    """``state`` with ``url``/``duration``/``size`` at the top level or inside ``record``."""
    state = _state(verb, params)
    if state not in terminal:
        return Reading(state, None)
    inner = params.get("record")
    url = _str(params, "url") or _str(inner, "url")
    duration = _num(params, "duration")
    duration = _num(inner, "duration") if duration is None else duration
    size = _num(params, "size")
    size = _num(inner, "size") if size is None else size
    return Reading(
        state,
        RecordResult(
            verb=verb,
            state=state,
            params=params,
            url=url,
            duration=duration,
            size=None if size is None else int(size),
        ),
    )


def read_tap(verb: str, params: JSONObject, terminal: frozenset[str]) -> Reading:
    state = _state(verb, params)
    tap, device = params.get("tap"), params.get("device")
    result = TapResult(
        verb=verb,
        state=state,
        params=params,
        tap=tap if isinstance(tap, dict) else {},
        device=device if isinstance(device, dict) else {},
    )
    return Reading(state, result if state in terminal else None)


def read_collect(verb: str, params: JSONObject, terminal: frozenset[str]) -> Reading:
    """A ``result`` object (``type`` and its ``params``; ``final: false`` for a partial
    one), or a plain ``state`` (``collecting``, or a terminal state without a result)."""
    result = params.get("result")
    if not isinstance(result, dict) or not result:
        state = _state(verb, params)
        if state in terminal:
            return Reading(state, CollectResult(verb=verb, state=state, params=params, kind=state))
        return Reading(state, None)
    kind = result.get("type")
    if type(kind) is not str or not kind:
        raise RemoteProtocolError(f"calling.call.{verb}: a result without a 'type'")
    inner = result.get("params")
    final = params.get("final") is not False and kind != CollectKind.START_OF_INPUT
    confidence = _num(inner, "confidence")
    collected = CollectResult(
        verb=verb,
        state=kind,
        params=params,
        kind=kind,
        final=final,
        digits=_str(inner, "digits"),
        terminator=_str(inner, "terminator"),
        text=_str(inner, "text"),
        confidence=confidence,
    )
    return Reading(kind, collected, settles=final, from_result=True)


def read_detect(verb: str, params: JSONObject, terminal: frozenset[str]) -> Reading:
    """``detect: {type, params: {event}}``: every event but ``finished``/``error`` is a
    detection (the set is open: digits are detected as themselves)."""
    detect = params.get("detect")
    inner = detect.get("params") if isinstance(detect, dict) else None
    event = _str(inner, "event")
    if not event:
        raise RemoteProtocolError(f"calling.call.{verb}: missing or invalid 'detect.params.event'")
    kind = _str(detect, "type")
    detected = event not in terminal
    result = DetectResult(
        verb=verb, state=event, params=params, kind=kind, result=event if detected else None
    )
    return Reading(event, result, settles=detected)


def read_fax(verb: str, params: JSONObject, terminal: frozenset[str]) -> Reading:
    """``fax: {type: page|finished|error, params: {...}}``."""
    fax = params.get("fax")
    state = _str(fax, "type")
    if not state:
        raise RemoteProtocolError(f"calling.call.{verb}: missing or invalid 'fax.type'")
    if state not in terminal:
        return Reading(state, None)
    inner = fax.get("params") if isinstance(fax, dict) else None
    pages = _num(inner, "pages")
    success = inner.get("success") if isinstance(inner, dict) else None
    return Reading(
        state,
        FaxResult(
            verb=verb,
            state=state,
            params=params,
            pages=None if pages is None else int(pages),
            document=_str(inner, "document"),
            success=success if isinstance(success, bool) else None,
        ),
    )

"""What the simulated switch does: per-destination outcomes and scriptable faults.

Values only, no behaviour beyond validation. ``Outcome``, ``Refusal`` and ``Faults`` are
frozen; ``Scenario`` is deliberately mutable (tests replace ``faults`` or edit
``destinations`` between dials). ``Scenario.from_dict`` reads the JSON-friendly file
format and raises ``LocalProtocolError`` on any unknown key or bad value, so a typo in a
scenario file never passes silently.

Invariants: every number is finite and non-negative (durations strictly positive where a
zero would be meaningless); an ``Outcome`` always has a kind; faults are all off by default.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .._errors import LocalProtocolError
from ._script import SCRIPT_KEYS, CallScript

__all__ = ["Faults", "MessageOutcome", "Outcome", "OutcomeKind", "Refusal", "Scenario"]


class OutcomeKind(enum.Enum):
    """What a dialled destination does."""

    #: Rings ``after`` seconds, then answers (``noAnswer`` if the device timeout comes first).
    ANSWER = "answer"
    #: Rings ``after`` seconds, then ends with ``busy``.
    BUSY = "busy"
    #: Rings until the device's own ``timeout``, then ends with ``noAnswer``.
    NO_ANSWER = "no_answer"
    #: Rings ``after`` seconds, then ends with ``decline``.
    DECLINE = "decline"
    #: Never rings; ends with ``error`` after ``after`` seconds (unreachable, failure).
    ERROR = "error"

    @property
    def end_reason(self) -> str | None:
        """The ``end_reason`` a failing outcome puts on the wire (``None`` for ANSWER)."""
        return _END_REASONS[self]


_END_REASONS = {
    OutcomeKind.ANSWER: None,
    OutcomeKind.BUSY: "busy",
    OutcomeKind.NO_ANSWER: "noAnswer",
    OutcomeKind.DECLINE: "decline",
    OutcomeKind.ERROR: "error",
}
_KIND_NAMES = {kind.value: kind for kind in OutcomeKind} | {"noAnswer": OutcomeKind.NO_ANSWER}


_MAX_SECONDS = 1e12


def _check_seconds(name: str, value: object, *, positive: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not -_MAX_SECONDS <= value <= _MAX_SECONDS  # NaN, infinities, overflowing ints
    ):
        raise LocalProtocolError(f"{name} must be a finite number of seconds, got {value!r}")
    if value < 0 or (positive and value == 0):
        raise LocalProtocolError(f"{name} must be {'> 0' if positive else '>= 0'}, got {value!r}")
    return float(value)


#: How an outbound message ends: its last ``message_state``.
MESSAGE_FINAL_STATES = ("delivered", "undelivered", "failed")


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageOutcome:
    """What happens to a message sent to one destination.

    ``state``: ``delivered`` (queued, initiated, sent, delivered), ``undelivered``
    (queued, initiated, sent, undelivered) or ``failed`` (queued, initiated, failed).
    ``after``: seconds between one state and the next. ``reason``: carried by an
    ``undelivered`` or ``failed`` state (a default when None).
    """

    state: str = "delivered"
    after: float = 0.1
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.state not in MESSAGE_FINAL_STATES:
            raise LocalProtocolError(
                f"message must be one of {list(MESSAGE_FINAL_STATES)}, got {self.state!r}"
            )
        _check_seconds("message.after", self.after)
        if self.reason is not None and (not isinstance(self.reason, str) or not self.reason):
            raise LocalProtocolError(
                f"message.reason must be a non-empty string, got {self.reason!r}"
            )

    @classmethod
    def from_value(cls, data: object) -> MessageOutcome:
        """``"failed"`` or ``{"state": "failed", "reason": "...", "after": 0.5}``."""
        if isinstance(data, str):
            return cls(state=data)
        values = _mapping("message", data)
        _only_keys("message", values, {"state", "after", "reason"})
        if "state" not in values:
            raise LocalProtocolError("message needs a state")
        return cls(
            state=values["state"],
            after=_check_seconds("message.after", values.get("after", 0.1)),
            reason=values.get("reason"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """One destination's scripted behaviour.

    ``hangup_after``: for an answered call, the far end hangs up this many seconds after
    answering (``ending``/``ended`` with ``hangup``); ``None`` keeps the call up.
    ``message``: what a message sent to this destination does (``None``: what the
    scenario's ``default`` says, else delivered).
    ``script``: what the far end does once the call is up (input, recording, detection).
    """

    kind: OutcomeKind
    after: float = 1.0
    hangup_after: float | None = None
    message: MessageOutcome | None = None
    script: CallScript = field(default_factory=CallScript)

    def __post_init__(self) -> None:
        if not isinstance(self.kind, OutcomeKind):
            raise LocalProtocolError(f"Outcome.kind must be an OutcomeKind, got {self.kind!r}")
        _check_seconds("Outcome.after", self.after)
        if self.hangup_after is not None:
            _check_seconds("Outcome.hangup_after", self.hangup_after, positive=True)
        if self.message is not None and not isinstance(self.message, MessageOutcome):
            raise LocalProtocolError("Outcome.message must be a MessageOutcome or None")
        if not isinstance(self.script, CallScript):
            raise LocalProtocolError("Outcome.script must be a CallScript")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Outcome:
        """``{"outcome": "busy", "after": 0.5, "hangup_after": 3, "message": "failed"}``
        (only ``outcome`` required), plus the script keys (``input``, ``record``,
        ``machine``, ... : ``CallScript``)."""
        _only_keys("outcome", data, {"outcome", "after", "hangup_after", "message", *SCRIPT_KEYS})
        name = data.get("outcome")
        kind = _KIND_NAMES.get(name) if isinstance(name, str) else None
        if kind is None:
            raise LocalProtocolError(f"outcome must be one of {sorted(_KIND_NAMES)}, got {name!r}")
        return cls(
            kind=kind,
            after=_check_seconds("after", data.get("after", 1.0)),
            hangup_after=data.get("hangup_after"),
            message=MessageOutcome.from_value(data["message"]) if "message" in data else None,
            script=CallScript.from_dict({k: v for k, v in data.items() if k in SCRIPT_KEYS}),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal:
    """How ``calling.dial`` is refused: a string ``code`` becomes a result
    ``{"code", "message"}`` (non-2xx), an integer one a JSON-RPC error object."""

    code: str | int
    message: str = "Dial refused"

    def __post_init__(self) -> None:
        if isinstance(self.code, bool) or not isinstance(self.code, str | int):
            raise LocalProtocolError(f"Refusal.code must be str or int, got {self.code!r}")
        if not isinstance(self.message, str):
            raise LocalProtocolError("Refusal.message must be a string")


DisconnectMode = bool | Literal["restart"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Faults:
    """Scriptable misbehaviour, all off by default.

    ``drop_after_frames`` and ``disconnect_after_dial`` are one-shot: they fire once per
    ``Faults`` object installed on the simulator (install a new one to re-arm). The others
    apply to every dial/connection while set.
    """

    duplicate_events: bool = False
    events_before_result: bool = False
    dial_event_first: bool = False
    reorder: bool = False
    delay_events: float = 0.0
    drop_after_frames: int | None = None
    refuse_resume: bool = False
    disconnect_after_dial: DisconnectMode = False
    garbage: bool = False
    dial_refused: Refusal | None = None
    create_call_after_refusal: bool = False
    ignore_end: bool = False

    def __post_init__(self) -> None:
        for name in (
            "duplicate_events",
            "events_before_result",
            "dial_event_first",
            "reorder",
            "refuse_resume",
            "garbage",
            "create_call_after_refusal",
            "ignore_end",
        ):
            if not isinstance(getattr(self, name), bool):
                raise LocalProtocolError(f"faults.{name} must be a boolean")
        _check_seconds("faults.delay_events", self.delay_events)
        frames = self.drop_after_frames
        if frames is not None and (
            isinstance(frames, bool) or not isinstance(frames, int) or frames < 1
        ):
            raise LocalProtocolError("faults.drop_after_frames must be an int >= 1 or None")
        mode = self.disconnect_after_dial
        if not (isinstance(mode, bool) or mode == "restart"):
            raise LocalProtocolError('faults.disconnect_after_dial must be a bool or "restart"')
        if self.dial_refused is not None and not isinstance(self.dial_refused, Refusal):
            raise LocalProtocolError("faults.dial_refused must be a Refusal or None")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faults:
        _only_keys("faults", data, set(cls.__dataclass_fields__))
        values = dict(data)
        refused = values.get("dial_refused")
        if refused is not None:
            if not isinstance(refused, Mapping):
                raise LocalProtocolError("faults.dial_refused must be an object {code, message}")
            _only_keys("faults.dial_refused", refused, {"code", "message"})
            if "code" not in refused:
                raise LocalProtocolError("faults.dial_refused needs a code")
            values["dial_refused"] = Refusal(**refused)
        return cls(**values)


def _default_outcome() -> Outcome:
    return Outcome(kind=OutcomeKind.ANSWER, after=0.2)


@dataclass(slots=True, kw_only=True)
class Scenario:
    """The switch's script. Mutable on purpose; read afresh at every decision point.

    ``destinations`` is keyed by a phone device's ``to_number`` or a SIP device's ``to``.
    Play durations: TTS lasts ``len(text) * play_seconds_per_char`` (at least
    ``min_play_seconds``); audio and ringtone last ``params.duration`` when given, else
    ``play_default_seconds``; silence lasts its ``duration``.
    """

    default: Outcome = field(default_factory=_default_outcome)
    destinations: dict[str, Outcome] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    play_seconds_per_char: float = 0.02
    min_play_seconds: float = 0.1
    play_default_seconds: float = 1.0
    ring_timeout: float = 30.0
    inbound_ring_timeout: float = 30.0

    def __post_init__(self) -> None:
        _check_seconds("play_seconds_per_char", self.play_seconds_per_char)
        _check_seconds("min_play_seconds", self.min_play_seconds, positive=True)
        _check_seconds("play_default_seconds", self.play_default_seconds, positive=True)
        _check_seconds("ring_timeout", self.ring_timeout, positive=True)
        _check_seconds("inbound_ring_timeout", self.inbound_ring_timeout, positive=True)

    def outcome_for(self, destination: str | None) -> Outcome:
        if destination is None:
            return self.default
        return self.destinations.get(destination, self.default)

    def message_for(self, destination: str) -> MessageOutcome:
        """A message to ``destination``: its own ``message``, else the default's, else
        delivered."""
        message = self.outcome_for(destination).message
        if message is None:
            message = self.default.message
        return message if message is not None else _DELIVERED

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Scenario:
        """Read the scenario file format::

        {"default": {"outcome": "answer", "after": 0.2},
         "destinations": {"+15550000001": {"outcome": "busy", "after": 0.5}},
         "faults": {"duplicate_events": true, "dial_refused": {"code": "500"}},
         "play_seconds_per_char": 0.02, "ring_timeout": 30}
        """
        if not isinstance(data, Mapping):
            raise LocalProtocolError("a scenario must be a JSON object")
        _only_keys("scenario", data, set(cls.__dataclass_fields__))
        values: dict[str, Any] = dict(data)
        if "default" in values:
            values["default"] = Outcome.from_dict(_mapping("default", values["default"]))
        if "destinations" in values:
            destinations = _mapping("destinations", values["destinations"])
            values["destinations"] = {
                str(key): Outcome.from_dict(_mapping(f"destinations[{key!r}]", value))
                for key, value in destinations.items()
            }
        if "faults" in values:
            values["faults"] = Faults.from_dict(_mapping("faults", values["faults"]))
        return cls(**values)


_DELIVERED = MessageOutcome()


def _mapping(name: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise LocalProtocolError(f"{name} must be an object, got {type(value).__name__}")
    return value


def _only_keys(name: str, data: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise LocalProtocolError(f"{name}: unknown keys {sorted(map(str, unknown))}")

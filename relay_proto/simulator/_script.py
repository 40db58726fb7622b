"""What the far end of a simulated call does once it is up: the media and input script.

Values only: a ``CallScript`` belongs to a destination's ``Outcome`` (``_scenario``) or to
an injected inbound call. ``CallScript.from_dict`` reads the JSON keys a destination may
carry besides its outcome (``input``, ``record``, ``machine``, ``fax``, ``digit``,
``pay``) and raises ``LocalProtocolError`` on any unknown key or bad value.

Invariants: every time is finite and non-negative; an ``Input`` has exactly the fields of
its kind; ``CallScript()`` is what a destination without those keys does (nobody presses
anything, talks 2 s into a recording, answers as a human, is not a fax machine, pays).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .._errors import LocalProtocolError

__all__ = [
    "SCRIPT_KEYS",
    "CallScript",
    "Detection",
    "FaxScript",
    "Input",
    "InputKind",
    "RecordScript",
]

_MAX_SECONDS = 1e12
_DTMF = frozenset("0123456789*#ABCD")
MACHINE_RESULTS = frozenset({"MACHINE", "HUMAN", "UNKNOWN", "FAX"})
FAX_TONES = frozenset({"CED", "CNG"})


def _seconds(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 <= value <= _MAX_SECONDS  # negatives, NaN, infinities
    ):
        raise LocalProtocolError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


def _only(name: str, data: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise LocalProtocolError(f"{name}: unknown keys {sorted(map(str, unknown))}")


def _object(name: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise LocalProtocolError(f"{name} must be an object, got {type(value).__name__}")
    return value


def _dtmf(name: str, value: object, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not empty) or not set(value) <= _DTMF:
        raise LocalProtocolError(f"{name} must be DTMF digits (0-9 * # A-D), got {value!r}")
    return value


class InputKind(enum.Enum):
    """What the far end does when a collect listens."""

    DIGITS = "digits"
    SPEECH = "speech"
    NO_INPUT = "no_input"
    NO_MATCH = "no_match"


@dataclass(frozen=True, slots=True, kw_only=True)
class Input:
    """One answer to one prompt.

    ``after``: seconds from the start of the collect's input timers to the first digit or
    word (``no_match``: to the unrecognised input). ``interval``: seconds between digits.
    ``seconds``: how long the speech lasts.
    """

    kind: InputKind
    digits: str = ""
    terminator: str = ""
    text: str = ""
    confidence: float = 1.0
    after: float = 1.0
    interval: float = 0.2
    seconds: float = 1.0

    @classmethod
    def from_json(cls, name: str, data: object) -> Input:
        """``"no_input"``, ``"no_match"``, ``{"digits", "terminator", "after", "interval"}``,
        ``{"speech", "confidence", "after", "seconds"}`` or ``{"no_match": true, "after"}``."""
        if isinstance(data, str):
            kinds = {"no_input": InputKind.NO_INPUT, "no_match": InputKind.NO_MATCH}
            if data not in kinds:
                raise LocalProtocolError(f'{name} must be "no_input", "no_match" or an object')
            return cls(kind=kinds[data])
        data = _object(name, data)
        after = _seconds(f"{name}.after", data.get("after", 1.0))
        if "digits" in data:
            _only(name, data, {"digits", "terminator", "after", "interval"})
            terminator = _dtmf(f"{name}.terminator", data.get("terminator", ""), empty=True)
            if len(terminator) > 1:
                raise LocalProtocolError(f"{name}.terminator must be one digit")
            return cls(
                kind=InputKind.DIGITS,
                digits=_dtmf(f"{name}.digits", data["digits"]),
                terminator=terminator,
                after=after,
                interval=_seconds(f"{name}.interval", data.get("interval", 0.2)),
            )
        if "speech" in data:
            _only(name, data, {"speech", "confidence", "after", "seconds"})
            text, confidence = data["speech"], data.get("confidence", 1.0)
            if not isinstance(text, str) or not text:
                raise LocalProtocolError(f"{name}.speech must be a non-empty string")
            if isinstance(confidence, bool) or not isinstance(confidence, int | float):
                raise LocalProtocolError(f"{name}.confidence must be a number in [0, 1]")
            if not 0 <= confidence <= 1:
                raise LocalProtocolError(f"{name}.confidence must be a number in [0, 1]")
            seconds = _seconds(f"{name}.seconds", data.get("seconds", 1.0))
            return cls(
                kind=InputKind.SPEECH,
                text=text,
                confidence=float(confidence),
                after=after,
                seconds=seconds,
            )
        _only(name, data, {"no_match", "after"})
        if data.get("no_match") is not True:
            raise LocalProtocolError(f"{name} needs digits, speech or no_match: true")
        return cls(kind=InputKind.NO_MATCH, after=after)


@dataclass(frozen=True, slots=True, kw_only=True)
class Detection:
    """A detector's finding: ``result`` (a machine verdict or a fax tone) ``after`` seconds
    into the detect; ``ready_after``: for a MACHINE, when its greeting ends (READY)."""

    result: str
    after: float = 1.0
    ready_after: float = 3.0

    @classmethod
    def from_json(cls, name: str, data: object, allowed: frozenset[str]) -> Detection:
        if isinstance(data, str):
            data = {"result": data}
        data = _object(name, data)
        _only(name, data, {"result", "after", "ready_after"})
        result = data.get("result")
        if result not in allowed:
            raise LocalProtocolError(f"{name}.result must be one of {sorted(allowed)}")
        return cls(
            result=str(result),
            after=_seconds(f"{name}.after", data.get("after", 1.0)),
            ready_after=_seconds(f"{name}.ready_after", data.get("ready_after", 3.0)),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordScript:
    """The far end talks ``seconds`` (``None``: never stops), then goes silent
    (``end="silence"``: the recording ends after its end_silence_timeout) or presses a
    terminator (``end="terminator"``); ``no_input``: it says nothing at all."""

    seconds: float | None = 2.0
    end: str = "silence"
    no_input: bool = False

    @classmethod
    def from_json(cls, data: object) -> RecordScript:
        if data == "no_input":
            return cls(no_input=True)
        data = _object("record", data)
        _only("record", data, {"seconds", "end"})
        seconds = data.get("seconds", 2.0)
        end = data.get("end", "silence")
        if end not in ("silence", "terminator"):
            raise LocalProtocolError('record.end must be "silence" or "terminator"')
        if seconds is not None:
            seconds = _seconds("record.seconds", seconds)
        return cls(seconds=seconds, end=end)


@dataclass(frozen=True, slots=True, kw_only=True)
class FaxScript:
    """The far end as a fax machine: its ``tone`` (for detect fax; ``None``: it is not a
    fax machine) heard ``tone_after`` seconds into a detect, and a fax transfer of
    ``pages`` pages, ``page_seconds`` each."""

    tone: str | None = None
    tone_after: float = 1.0
    pages: int = 1
    page_seconds: float = 2.0
    success: bool = True

    @classmethod
    def from_json(cls, data: object) -> FaxScript:
        if isinstance(data, str):
            data = {"tone": data}
        data = _object("fax", data)
        _only("fax", data, {"tone", "tone_after", "pages", "page_seconds", "success"})
        tone, pages, success = data.get("tone"), data.get("pages", 1), data.get("success", True)
        if tone is not None and tone not in FAX_TONES:
            raise LocalProtocolError(f"fax.tone must be one of {sorted(FAX_TONES)} or null")
        if isinstance(pages, bool) or not isinstance(pages, int) or not 0 <= pages <= 10_000:
            raise LocalProtocolError("fax.pages must be an integer in [0, 10000]")
        if not isinstance(success, bool):
            raise LocalProtocolError("fax.success must be a boolean")
        seconds = _seconds("fax.page_seconds", data.get("page_seconds", 2.0))
        tone_after = _seconds("fax.tone_after", data.get("tone_after", 1.0))
        return cls(
            tone=tone, tone_after=tone_after, pages=pages, page_seconds=seconds, success=success
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CallScript:
    """Everything the far end of one call does once the call is up.

    ``inputs``: one answer per collect, in order; when they run out every further collect
    gets ``no_input`` (``repeat``: the single answer is given to every collect).
    ``digit``: what a digit detector hears (``None``: nothing). ``pay``: ``(state, after)``
    of a payment (``finished`` or ``error``).
    """

    inputs: tuple[Input, ...] = ()
    repeat: bool = False
    record: RecordScript = field(default_factory=RecordScript)
    machine: Detection = field(default_factory=lambda: Detection(result="HUMAN"))
    fax: FaxScript = field(default_factory=FaxScript)
    digit: Input | None = None
    pay: tuple[str, float] = ("finished", 2.0)

    def input_for(self, index: int) -> Input:
        """The answer to the ``index``-th collect of the call (0-based)."""
        if self.repeat:
            return self.inputs[0]
        if index < len(self.inputs):
            return self.inputs[index]
        return _NO_INPUT

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallScript:
        _only("script", data, set(SCRIPT_KEYS))
        values: dict[str, Any] = {}
        if "input" in data:
            raw = data["input"]
            if isinstance(raw, list):
                values["inputs"] = tuple(
                    Input.from_json(f"input[{i}]", item) for i, item in enumerate(raw)
                )
            else:
                values["inputs"], values["repeat"] = (Input.from_json("input", raw),), True
        if "record" in data:
            values["record"] = RecordScript.from_json(data["record"])
        if "machine" in data:
            values["machine"] = Detection.from_json("machine", data["machine"], MACHINE_RESULTS)
        if "fax" in data:
            values["fax"] = FaxScript.from_json(data["fax"])
        if "digit" in data:
            digit = data["digit"]
            if isinstance(digit, str):
                digit = {"digits": digit}
            values["digit"] = Input.from_json("digit", _object("digit", digit))
        if "pay" in data:
            values["pay"] = _pay(data["pay"])
        return cls(**values)


def _pay(data: object) -> tuple[str, float]:
    if isinstance(data, str):
        data = {"state": data}
    data = _object("pay", data)
    _only("pay", data, {"state", "after"})
    state = data.get("state", "finished")
    if state not in ("finished", "error"):
        raise LocalProtocolError('pay.state must be "finished" or "error"')
    return state, _seconds("pay.after", data.get("after", 2.0))


_NO_INPUT = Input(kind=InputKind.NO_INPUT)
#: The keys a destination (or an injected inbound call's ``script``) may carry.
SCRIPT_KEYS = ("input", "record", "machine", "fax", "digit", "pay")

"""Input verbs of the simulator: collect, play_and_collect, detect, send_digits.

Command handlers over the generic engine (``_actions``). What the far end enters comes
from its script (``_script``): one ``Input`` per collect, in order; a detector hears the
script's ``machine`` / ``fax`` / ``digit``. Every action ends with one terminal event:
its result, its ``.stop`` (collect ``state: finished``, detect ``finished``), or its call
ending (collect ``error``, detect ``error``, send_digits ``error``) before the call's
``ending``.

Invariants (collect): ``prompt_end`` is set exactly while the prompt of a
play_and_collect plays; ``input_at``/``input_step`` is the far end's next move once the
input timers run; the action's one timer is armed at the earlier of the two.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import _validate as validate
from .._errors import LocalProtocolError
from .._wire import JSONObject
from ._actions import (
    Actions,
    Handler,
    bool_param,
    control_id_of,
    not_answered,
    object_param,
    one_of,
    optional,
    reply,
    seconds_param,
    stopper,
)
from ._legs import Action, Leg
from ._script import Input, InputKind

__all__ = ["COMMANDS"]

_COLLECT = ("collect", "play_and_collect")
_DTMF = frozenset("0123456789*#ABCD")
_SEND_DIGITS = frozenset("0123456789*#ABCDabcdwW")
#: Seconds one character of ``send_digits`` takes (``w``: half a second, ``W``: one).
_DIGIT_SECONDS = {"w": 0.5, "W": 1.0}
_DEFAULT_DIGIT_SECONDS = 0.2


def _dtmf(where: str, value: object) -> str:
    if not isinstance(value, str) or not set(value) <= _DTMF:
        raise LocalProtocolError(f"{where}: must be a string of DTMF digits (0-9 * # A-D)")
    return value


# ---- collect -------------------------------------------------------------------------------


class Collecting(Action):
    __slots__ = (
        "actions",
        "continuous",
        "digits",
        "initial_timeout",
        "input",
        "input_at",
        "input_step",
        "partial",
        "prompt_end",
        "speech",
        "start_of_input",
        "timers_started",
        "typed",
    )

    def __init__(self, actions: Actions, call: Leg, control_id: str, verb: str) -> None:
        super().__init__(call, control_id, verb, "collecting")
        self.actions = actions
        self.digits: JSONObject | None = None
        self.speech: JSONObject | None = None
        self.initial_timeout = 5.0
        self.partial = self.continuous = self.start_of_input = False
        self.prompt_end: float | None = None
        self.input_at: float | None = None
        self.input_step: Callable[[float], None] | None = None
        self.timers_started = False
        self.input = Input(kind=InputKind.NO_INPUT)
        self.typed = ""

    # timing: one timer at the earlier of the prompt's end and the far end's next move
    def plan(self, when: float | None, step: Callable[[float], None] | None) -> None:
        self.input_at, self.input_step = when, step
        self.rearm()

    def rearm(self) -> None:
        """Arm the one timer; a live collect always waits for its prompt or its input."""
        times = [t for t in (self.prompt_end, self.input_at) if t is not None]
        self.actions.arm(self, min(times), self.tick)

    def tick(self, when: float) -> None:
        if self.prompt_end is not None and self.prompt_end <= when:
            self.end_prompt("finished", when)
            if not self.timers_started:
                self.start_timers(when)
        step = self.input_step
        if self.input_at is not None and self.input_at <= when and step is not None:
            self.input_at = self.input_step = None
            step(when)
        if self.call.actions.get(self.control_id) is self:
            self.rearm()

    def end_prompt(self, state: str, now: float) -> None:
        if self.prompt_end is not None:
            self.prompt_end = None
            self.actions.emit(self, "calling.call.play", {"state": state}, now)

    # the far end
    def start_timers(self, now: float) -> None:
        self.timers_started = True
        entry = self.input = self.actions.next_input(self.call)
        kind, timeout = entry.kind, self.initial_timeout
        listening = (kind is InputKind.DIGITS and self.digits is not None) or (
            kind is InputKind.SPEECH and self.speech is not None
        )
        if kind is InputKind.NO_MATCH and entry.after < timeout:
            self.plan(now + entry.after, lambda at: self.result("no_match", {}, at))
        elif listening and entry.after < timeout:
            self.typed = ""
            self.plan(now + entry.after, self.begin)
        else:
            self.plan(now + timeout, lambda at: self.result("no_input", {}, at))

    def begin(self, now: float) -> None:
        if self.start_of_input:
            self.send({"result": {"type": "start_of_input"}, "final": False}, now)
        if self.input.kind is InputKind.DIGITS:
            self.press(now)
        else:
            self.speak(1, now)

    def press(self, now: float) -> None:
        entry, digits = self.input, self.digits or {}
        keys = entry.digits + entry.terminator
        key = keys[len(self.typed)]
        terminators = str(digits.get("terminators", ""))
        if key in terminators:
            self.result("digit", {"digits": self.typed, "terminator": key}, now)
            return
        self.typed += key
        if len(self.typed) >= int(digits.get("max", 1)):
            self.result("digit", {"digits": self.typed, "terminator": ""}, now)
        elif len(self.typed) < len(keys):
            if self.partial:
                self.partial_result("digit", {"digits": self.typed}, now)
            self.plan(now + entry.interval, self.press)
        else:
            timeout = seconds_param("digit_timeout", digits.get("digit_timeout"), 5.0)
            typed = {"digits": self.typed, "terminator": ""}
            self.plan(now + timeout, lambda at: self.result("digit", typed, at))

    def speak(self, count: int, now: float) -> None:
        entry = self.input
        words = entry.text.split()
        if count >= len(words) or not self.partial:
            speech = {"text": entry.text, "confidence": entry.confidence}
            self.plan(now + entry.seconds, lambda at: self.result("speech", speech, at))
            return
        self.partial_result("speech", {"text": " ".join(words[:count])}, now)
        step = entry.seconds / len(words)
        self.plan(now + step, lambda at: self.speak(count + 1, at))

    # events
    def send(self, params: JSONObject, now: float) -> None:
        self.actions.emit(self, "calling.call.collect", params, now)

    def partial_result(self, kind: str, params: JSONObject, now: float) -> None:
        self.send({"result": {"type": kind, "params": params}, "final": False}, now)

    def result(self, kind: str, params: JSONObject, now: float) -> None:
        self.end_prompt("finished", now)  # the caller barged in
        body: JSONObject = {"result": {"type": kind, "params": params}, "final": True}
        if self.continuous:
            self.send(body, now)
            self.start_timers(now)
            return
        self.actions.remove(self)
        self.state = "finished"
        self.send(body, now)

    def halt(self, reason: str, now: float) -> None:
        if reason == "stop":
            self.end_prompt("finished", now)
            self.state = "finished"
            self.send({"state": "finished"}, now)
        else:
            self.end_prompt("error", now)
            self.state = "error"
            self.send({"state": "error", "result": {"type": "error"}}, now)


def _check_collect(action: Collecting, config: JSONObject) -> None:
    """Read a collect object (``collect`` of play_and_collect, or collect's params)."""
    if "digits" in config:
        digits = object_param("digits", config["digits"])
        validate.positive_int("digits.max", digits.get("max"))
        optional(digits, "terminators", lambda w, v: _dtmf(f"digits.{w}", v))
        seconds_param("digits.digit_timeout", digits.get("digit_timeout"), 0.0)
        action.digits = digits
    if "speech" in config:
        speech = object_param("speech", config["speech"])
        for key in ("end_silence_timeout", "speech_timeout"):
            seconds_param(f"speech.{key}", speech.get(key), 0.0)
        action.speech = speech
    if action.digits is None and action.speech is None:
        raise LocalProtocolError("collect: needs digits or speech")
    timeout = config.get("initial_timeout")
    action.initial_timeout = seconds_param("initial_timeout", timeout, 5.0)
    action.partial = bool_param("partial_results", config.get("partial_results", False))


def _collect(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
    action = Collecting(actions, call, control_id_of(params), "collect")
    _check_collect(action, params)
    action.continuous = bool_param("continuous", params.get("continuous", False))
    action.start_of_input = bool_param(
        "send_start_of_input", params.get("send_start_of_input", False)
    )
    timers = bool_param("start_input_timers", params.get("start_input_timers", True))
    refusal = not_answered(call) or actions.add(action)
    if refusal is not None:
        return refusal
    action.send({"state": "collecting"}, now)
    if timers:
        action.start_timers(now)
    return reply("Collecting")


def _play_and_collect(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
    action = Collecting(actions, call, control_id_of(params), "play_and_collect")
    seconds = actions.switch.play_seconds(params.get("play"))
    _check_collect(action, object_param("collect", params.get("collect")))
    optional(params, "volume", validate.volume)
    refusal = not_answered(call) or actions.add(action)
    if refusal is not None:
        return refusal
    action.prompt_end = now + seconds
    actions.emit(action, "calling.call.play", {"state": "playing"}, now)
    action.rearm()
    return reply("Collecting")


def _start_input_timers(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
    action = actions.find(call, params, _COLLECT)
    if not isinstance(action, Collecting):
        return reply("Collect not found", "404")
    if not action.timers_started:
        action.start_timers(now)
    return reply("Input timers started")


def _collect_volume(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
    action = actions.find(call, params, ("play_and_collect",))
    if action is None:
        return reply("Collect not found", "404")
    if "volume" not in params:
        raise LocalProtocolError("volume: required")
    validate.volume("volume", params["volume"])
    return reply("Volume set")


# ---- detect --------------------------------------------------------------------------------


class Detecting(Action):
    __slots__ = ("actions", "kind", "pending")

    def __init__(self, actions: Actions, call: Leg, control_id: str, kind: str) -> None:
        super().__init__(call, control_id, "detect", "detecting")
        self.actions = actions
        self.kind = kind
        #: What the detector will report, and when, in order (the last one is ``finished``).
        self.pending: list[tuple[float, str]] = []

    def send(self, event: str, now: float) -> None:
        detect: JSONObject = {"type": self.kind, "params": {"event": event}}
        self.actions.emit(self, "calling.call.detect", {"detect": detect}, now)

    def next(self, when: float) -> None:
        _, event = self.pending.pop(0)
        if not self.pending:
            self.actions.remove(self)
            self.state = event
        self.send(event, when)
        if self.pending:
            self.actions.arm(self, self.pending[0][0], self.next)

    def halt(self, reason: str, now: float) -> None:
        self.state = "finished" if reason == "stop" else "error"
        self.send(self.state, now)


def _detect_plan(actions: Actions, call: Leg, detect: JSONObject, now: float) -> list[str | float]:
    """``[when, event, when, event, ...]`` the detector reports before it finishes
    (flat, so the caller appends ``finished``); see docs/simulator.md, Detection."""
    kind, params = str(detect["type"]), object_param("detect.params", detect.get("params", {}))
    script = actions.script_for(call)
    if kind == "machine":
        for key in ("initial_timeout", "end_silence_timeout", "machine_voice_threshold"):
            seconds_param(f"detect.params.{key}", params.get(key), 0.0)
        optional(params, "machine_words_threshold", validate.non_negative_int)
        optional(params, "detect_interruptions", bool_param)
        message_end = bool_param("detect_message_end", params.get("detect_message_end", False))
        verdict = script.machine
        plan: list[str | float] = [now + verdict.after, verdict.result]
        if verdict.result == "MACHINE" and message_end:
            plan += [now + max(verdict.ready_after, verdict.after), "READY"]
        return plan
    if kind == "fax":
        wanted = params.get("tone")
        if wanted is not None:
            one_of("detect.params.tone", wanted, ("CED", "CNG"))
        tone = script.fax.tone
        if tone is None or wanted not in (None, tone):
            return []
        return [now + script.fax.tone_after, tone]
    heard = _dtmf("detect.params.digits", params.get("digits", "0123456789#*"))
    entry = script.digit
    if entry is None:
        return []
    plan = []
    for index, digit in enumerate(entry.digits):
        if digit in heard:
            plan += [now + entry.after + index * entry.interval, digit]
    return plan


def _detect(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
    control_id = control_id_of(params)
    detect = object_param("detect", params.get("detect"))
    kind = one_of("detect.type", detect.get("type"), ("machine", "fax", "digit"))
    timeout = seconds_param("timeout", params.get("timeout"), 30.0)
    plan = _detect_plan(actions, call, detect, now)
    action = Detecting(actions, call, control_id, kind)
    refusal = not_answered(call) or actions.add(action)
    if refusal is not None:
        return refusal
    deadline = now + timeout
    pending = [(float(plan[i]), str(plan[i + 1])) for i in range(0, len(plan), 2)]
    pending = [(when, event) for when, event in pending if when < deadline]
    if kind == "digit" or not pending:
        pending.append((deadline, "finished"))
    else:
        pending.append((pending[-1][0], "finished"))
    action.pending = pending
    actions.arm(action, pending[0][0], action.next)
    return reply("Detecting")


# ---- send_digits ---------------------------------------------------------------------------


class SendingDigits(Action):
    __slots__ = ("actions",)

    def __init__(self, actions: Actions, call: Leg, control_id: str) -> None:
        super().__init__(call, control_id, "send_digits", "sending")
        self.actions = actions

    def done(self, when: float) -> None:
        self.actions.remove(self)
        self.halt("done", when)

    def halt(self, reason: str, now: float) -> None:
        self.state = "finished" if reason == "done" else "error"
        self.actions.emit(self, "calling.call.send_digits", {"state": self.state}, now)


def _send_digits(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
    control_id = control_id_of(params)
    digits = params.get("digits")
    if not isinstance(digits, str) or not digits or not set(digits) <= _SEND_DIGITS:
        raise LocalProtocolError("digits: must be a non-empty string of 0-9 * # A-D w W")
    action = SendingDigits(actions, call, control_id)
    refusal = not_answered(call) or actions.add(action)
    if refusal is not None:
        return refusal
    seconds = sum(_DIGIT_SECONDS.get(digit, _DEFAULT_DIGIT_SECONDS) for digit in digits)
    actions.arm(action, now + seconds, action.done)
    return reply("Sending digits")


COMMANDS: dict[str, Handler] = {
    "calling.collect": _collect,
    "calling.collect.stop": stopper(("collect",), "Collect"),
    "calling.collect.start_input_timers": _start_input_timers,
    "calling.play_and_collect": _play_and_collect,
    "calling.play_and_collect.stop": stopper(("play_and_collect",), "Collect"),
    "calling.play_and_collect.volume": _collect_volume,
    "calling.send_digits": _send_digits,
    "calling.detect": _detect,
    "calling.detect.stop": stopper(("detect",), "Detect"),
}

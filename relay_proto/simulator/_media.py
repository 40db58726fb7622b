"""Media verbs of the simulator: record, tap, stream, transcribe, pay, send/receive fax, echo.

Command handlers over the generic engine (``_actions``). Each validates its params (a
failure is a ``LocalProtocolError``: a ``400`` reply), answers ``409`` on a call not
answered yet, registers an ``Action`` and emits its events on the simulated clock, as the
far end's script (``_script``) says. Every action here ends with one terminal event:
when it is done, on its ``.stop``, or when its call ends (before the call's ``ending``).
"""

from __future__ import annotations

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
    string_param,
)
from ._legs import Action, Leg

__all__ = ["COMMANDS"]

_BYTES_PER_SECOND = {"mp3": 4000, "wav": 16000}
_DIRECTIONS = ("listen", "speak", "both")
_DTMF = frozenset("0123456789*#ABCD")
_URL_BASE = "https://sim.invalid"


def _start(actions: Actions, action: Action) -> JSONObject | None:
    """The refusal of a new action (call not answered, control_id taken), else None."""
    refusal = not_answered(action.call)
    return refusal if refusal is not None else actions.add(action)


# ---- record ----------------------------------------------------------------------------


class Recording(Action):
    __slots__ = ("actions", "audio", "elapsed", "fmt", "running_since", "url")

    def __init__(self, actions: Actions, call: Leg, control_id: str, audio: JSONObject) -> None:
        super().__init__(call, control_id, "record", "recording")
        self.actions = actions
        self.audio = audio
        self.fmt = str(audio.get("format", "mp3"))
        self.url = f"{_URL_BASE}/recordings/{control_id}.{self.fmt}"
        self.elapsed = 0.0
        self.running_since: float | None = None

    def recorded(self, now: float) -> float:
        since = self.running_since
        return self.elapsed + (now - since if since is not None else 0.0)

    def send(self, now: float, *, final: bool = False) -> None:
        params: JSONObject = {"state": self.state, "url": self.url}
        if final:
            duration = round(self.recorded(now), 3)
            params["duration"] = duration
            params["size"] = int(duration * _BYTES_PER_SECOND[self.fmt])
        params["record"] = {"audio": self.audio}
        self.actions.emit(self, "calling.call.record", params, now)

    def done(self, when: float) -> None:
        self.actions.remove(self)
        self.halt("done", when)

    def no_input(self, when: float) -> None:
        self.actions.remove(self)
        self.state = "no_input"
        self.actions.emit(self, "calling.call.record", {"state": "no_input"}, when)

    def halt(self, reason: str, now: float) -> None:
        self.state = "finished"
        self.send(now, final=True)


def _check_audio(record: object) -> JSONObject:
    audio = object_param("record.audio", object_param("record", record).get("audio", {}))
    optional(audio, "beep", bool_param)
    optional(audio, "stereo", bool_param)
    optional(audio, "format", lambda w, v: one_of(f"record.audio.{w}", v, ("mp3", "wav")))
    optional(audio, "direction", lambda w, v: one_of(f"record.audio.{w}", v, _DIRECTIONS))
    for key in ("initial_timeout", "end_silence_timeout"):
        seconds_param(f"record.audio.{key}", audio.get(key), 0.0)
    terminators = audio.get("terminators", "")
    if not isinstance(terminators, str) or not set(terminators) <= _DTMF:
        raise LocalProtocolError("record.audio.terminators: must be a string of DTMF digits")
    return audio


def _record(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
    control_id = control_id_of(params)
    audio = _check_audio(params.get("record"))
    action = Recording(actions, call, control_id, audio)
    refusal = _start(actions, action)
    if refusal is not None:
        return refusal
    action.running_since = now
    action.send(now)
    script = actions.script_for(call).record
    if script.no_input:
        timeout = seconds_param("initial_timeout", audio.get("initial_timeout"), 5.0)
        actions.arm(action, now + timeout, action.no_input)
    elif script.seconds is not None:
        talk = script.seconds
        if script.end == "silence" or not audio.get("terminators"):
            talk += seconds_param("end_silence_timeout", audio.get("end_silence_timeout"), 1.0)
        actions.arm(action, now + talk, action.done)
    # As the real server's reply does (the official SDKs' fixtures and wire types): the
    # recording's control_id and url come back at once, not only with its events.
    return {**reply("Recording"), "control_id": control_id, "url": action.url}


def _record_control(pause: bool) -> Handler:
    def control(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
        action = actions.find(call, params, ("record",))
        if not isinstance(action, Recording):
            return reply("Recording not found", "404")
        if pause:
            optional(params, "behavior", lambda w, v: one_of(w, v, ("silence", "skip")))
        if pause and action.state == "recording":
            actions.pause(action, now)
            action.elapsed = action.recorded(now)
            action.running_since, action.state = None, "paused"
            action.send(now)
        elif not pause and action.state == "paused":
            action.running_since, action.state = now, "recording"
            actions.resume(action, now)
            action.send(now)
        return reply("Paused" if pause else "Resumed")

    return control


# ---- tap, stream, transcribe -------------------------------------------------------------


class Running(Action):
    """An action that runs until stopped or its call ends: tap, stream, transcribe."""

    __slots__ = ("actions", "event_type", "info", "started")

    def __init__(
        self, actions: Actions, call: Leg, control_id: str, verb: str, info: JSONObject
    ) -> None:
        super().__init__(call, control_id, verb, _RUNNING_STATES[verb])
        self.actions = actions
        self.event_type = f"calling.call.{verb}"
        self.info = info
        self.started = 0.0

    def send(self, now: float) -> None:
        self.actions.emit(self, self.event_type, {"state": self.state, **self.info}, now)

    def halt(self, reason: str, now: float) -> None:
        self.state = "finished"
        if self.verb == "transcribe":
            duration = round(now - self.started, 3)
            self.info = {
                "url": f"{_URL_BASE}/transcriptions/{self.control_id}.json",
                "recording_id": self.control_id,
                "duration": duration,
                "size": int(duration * _BYTES_PER_SECOND["wav"]),
            }
        self.send(now)


_RUNNING_STATES = {"tap": "tapping", "stream": "streaming", "transcribe": "transcribing"}


def _check_tap(params: JSONObject) -> tuple[JSONObject, JSONObject]:
    tap = object_param("tap", params.get("tap"))
    one_of("tap.type", tap.get("type"), ("audio",))
    tap_params = object_param("tap.params", tap.get("params", {}))
    optional(tap_params, "direction", lambda w, v: one_of(f"tap.params.{w}", v, _DIRECTIONS))
    device = object_param("device", params.get("device"))
    kind = one_of("device.type", device.get("type"), ("rtp", "ws"))
    device_params = object_param("device.params", device.get("params"))
    if kind == "rtp":
        string_param("device.params.addr", device_params.get("addr"))
        validate.positive_int("device.params.port", device_params.get("port"))
    else:
        uri = string_param("device.params.uri", device_params.get("uri"))
        if not uri.startswith(("ws://", "wss://")):
            raise LocalProtocolError("device.params.uri: must be a ws:// or wss:// URL")
    return tap, device


def _tap(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
    control_id = control_id_of(params)
    tap, device = _check_tap(params)
    action = Running(actions, call, control_id, "tap", {"tap": tap, "device": device})
    refusal = _start(actions, action)
    if refusal is not None:
        return refusal
    action.send(now)
    source: JSONObject = {
        "type": "rtp",
        "params": {"addr": "127.0.0.1", "port": 40000, "codec": "PCMU", "ptime": 20},
    }
    return {**reply("Tapping"), "source_device": source}


def _stream(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
    control_id = control_id_of(params)
    url = string_param("url", params.get("url"))
    if not url.startswith(("ws://", "wss://")):
        raise LocalProtocolError("url: must be a ws:// or wss:// URL")
    for key in ("name", "codec", "track", "status_url"):
        optional(params, key, string_param)
    info: JSONObject = {"url": url}
    if "name" in params:
        info["name"] = params["name"]
    action = Running(actions, call, control_id, "stream", info)
    refusal = _start(actions, action)
    if refusal is not None:
        return refusal
    action.send(now)
    return reply("Streaming")


def _transcribe(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
    control_id = control_id_of(params)
    optional(params, "status_url", string_param)
    action = Running(actions, call, control_id, "transcribe", {})
    refusal = _start(actions, action)
    if refusal is not None:
        return refusal
    action.started = now
    action.send(now)
    return reply("Transcribing")


# ---- pay ---------------------------------------------------------------------------------


class Payment(Action):
    __slots__ = ("actions",)

    def __init__(self, actions: Actions, call: Leg, control_id: str) -> None:
        super().__init__(call, control_id, "pay", "collecting")
        self.actions = actions

    def settle(self, state: str, now: float) -> None:
        self.state = state
        self.actions.emit(self, "calling.call.pay", {"state": state}, now)

    def halt(self, reason: str, now: float) -> None:
        self.settle("finished" if reason == "stop" else "error", now)


def _pay(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
    control_id = control_id_of(params)
    string_param("payment_connector_url", params.get("payment_connector_url"))
    optional(params, "input", lambda w, v: one_of(w, v, ("dtmf", "voice")))
    action = Payment(actions, call, control_id)
    refusal = _start(actions, action)
    if refusal is not None:
        return refusal
    state, after = actions.script_for(call).pay

    def settle(when: float) -> None:
        actions.remove(action)
        action.settle(state, when)

    actions.arm(action, now + after, settle)
    return reply("Paying")


# ---- fax ---------------------------------------------------------------------------------


class Fax(Action):
    __slots__ = ("actions", "details", "page_seconds", "pages", "sent", "success")

    def __init__(self, actions: Actions, call: Leg, control_id: str, verb: str) -> None:
        super().__init__(call, control_id, verb, "faxing")
        self.actions = actions
        self.sent = 0
        self.pages = 0
        self.page_seconds = 0.0
        self.success = True
        self.details: JSONObject = {}

    def send(self, kind: str, params: JSONObject, now: float) -> None:
        fax: JSONObject = {"type": kind, "params": params}
        self.actions.emit(self, "calling.call.fax", {"fax": fax}, now)

    def page(self, when: float) -> None:
        self.sent += 1
        direction = self.details["direction"]
        self.send("page", {"direction": direction, "pages": self.sent}, when)
        if self.sent < self.pages:
            self.actions.arm(self, when + self.page_seconds, self.page)
        else:
            self.done(when)

    def done(self, when: float) -> None:
        self.actions.remove(self)
        self.finish(self.success, when, "Success" if self.success else "Transmission failed")

    def finish(self, success: bool, now: float, text: str = "Success") -> None:
        self.state = "finished"
        outcome: JSONObject = {
            "pages": self.sent,
            "success": success,
            "result": "1231" if success else "1",
            "result_text": text,
            "format": "T.4",
        }
        self.send("finished", {**self.details, **outcome}, now)

    def halt(self, reason: str, now: float) -> None:
        self.finish(False, now, "Stopped" if reason == "stop" else "Call ended")


def _fax(verb: str) -> Handler:
    def start(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
        control_id = control_id_of(params)
        device = call.device.get("params", {})
        near, far = device.get("from_number", ""), device.get("to_number", "")
        if call.direction == "inbound":
            near, far = far, near
        details: JSONObject = {"direction": "send" if verb == "send_fax" else "receive"}
        if verb == "send_fax":
            details["document"] = string_param("document", params.get("document"))
            optional(params, "header_info", string_param)
            if "identity" in params:
                near = string_param("identity", params["identity"])
        else:
            details["document"] = f"{_URL_BASE}/faxes/{control_id}.pdf"
        details.update(identity=near, remote_identity=far)
        action = Fax(actions, call, control_id, verb)
        refusal = _start(actions, action)
        if refusal is not None:
            return refusal
        script = actions.script_for(call).fax
        action.details, action.pages = details, script.pages
        action.page_seconds, action.success = script.page_seconds, script.success
        if script.pages:
            actions.arm(action, now + script.page_seconds, action.page)
        else:
            actions.arm(action, now + script.page_seconds, action.done)
        return reply("Faxing")

    return start


# ---- echo --------------------------------------------------------------------------------


class Echo(Action):
    __slots__ = ("actions",)

    def __init__(self, actions: Actions, call: Leg) -> None:
        super().__init__(call, actions.new_id(), "echo", "echoing")
        self.actions = actions

    def halt(self, reason: str, now: float) -> None:
        self.state = "finished"
        self.actions.emit_call(self.call, "calling.call.echo", {"state": "finished"}, now)


def _echo(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
    timeout = seconds_param("timeout", params.get("timeout"), 0.0)
    optional(params, "status_url", string_param)
    action = Echo(actions, call)
    refusal = _start(actions, action)
    if refusal is not None:
        return refusal
    actions.emit_call(call, "calling.call.echo", {"state": "echoing"}, now)
    if timeout:
        actions.arm(action, now + timeout, lambda when: actions.end(action, "done", when))
    return reply("Echoing")


COMMANDS: dict[str, Handler] = {
    "calling.record": _record,
    "calling.record.stop": stopper(("record",), "Recording"),
    "calling.record.pause": _record_control(pause=True),
    "calling.record.resume": _record_control(pause=False),
    "calling.tap": _tap,
    "calling.tap.stop": stopper(("tap",), "Tap"),
    "calling.stream": _stream,
    "calling.stream.stop": stopper(("stream",), "Stream"),
    "calling.transcribe": _transcribe,
    "calling.transcribe.stop": stopper(("transcribe",), "Transcription"),
    "calling.pay": _pay,
    "calling.pay.stop": stopper(("pay",), "Payment"),
    "calling.send_fax": _fax("send_fax"),
    "calling.send_fax.stop": stopper(("send_fax",), "Fax"),
    "calling.receive_fax": _fax("receive_fax"),
    "calling.receive_fax.stop": stopper(("receive_fax",), "Fax"),
    "calling.echo": _echo,
}

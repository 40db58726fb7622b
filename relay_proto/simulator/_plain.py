"""Call verbs of the simulator answered by a reply (and at most a state event): hold,
denoise, transfer, refer, digit bindings, conferences, rooms, live transcription and
translation, user events, and the call queue.

Each checks its required params (``LocalProtocolError``: a ``400`` reply), answers ``409``
on a call not answered yet, and replies ``{"code": "200", "message": ...}``. A queued call
is an ``Action`` (verb ``queue``) until ``queue.leave`` or its call ends (``leave``).
"""

from __future__ import annotations

from collections.abc import Callable

from .._errors import LocalProtocolError
from .._wire import JSONObject
from ._actions import (
    Actions,
    Handler,
    control_id_of,
    not_answered,
    object_param,
    optional,
    reply,
    string_param,
)
from ._legs import Action, Leg

__all__ = ["COMMANDS"]

#: A check of a verb's params (raises ``LocalProtocolError``).
Check = Callable[[JSONObject], object]


def _simple(
    message: str,
    check: Check | None = None,
    event: tuple[str, JSONObject] | None = None,
) -> Handler:
    """A verb answered ``200 message``, optionally with one call event."""

    def handle(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
        if check is not None:
            check(params)
        refusal = not_answered(call)
        if refusal is not None:
            return refusal
        if event is not None:
            actions.emit_call(call, event[0], event[1], now)
        return reply(message)

    return handle


def _required(*keys: str) -> Check:
    def check(params: JSONObject) -> None:
        for key in keys:
            string_param(key, params.get(key))

    return check


def _action_object(params: JSONObject) -> None:
    object_param("action", params.get("action"))


def _bind(params: JSONObject) -> None:
    _required("digits", "bind_method")(params)
    optional(params, "params", object_param)
    optional(params, "realm", string_param)


def _sip_device(params: JSONObject) -> str:
    device = object_param("device", params.get("device"))
    device_params = object_param("device.params", device.get("params"))
    to = string_param("device.params.to", device_params.get("to"))
    if device.get("type") != "sip" or not to.startswith(("sip:", "sips:")):
        raise LocalProtocolError("device: a refer needs a sip device with a sip: URI")
    return to


def _refer(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
    to = _sip_device(params)
    refusal = not_answered(call)
    if refusal is not None:
        return refusal
    body: JSONObject = {
        "state": "success",
        "sip_refer_to": to,
        "sip_refer_response_code": "202",
        "sip_notify_response_code": "200",
    }
    actions.emit_call(call, "calling.call.refer", body, now)
    return reply("Referring")


# ---- queue ---------------------------------------------------------------------------------


class Queued(Action):
    __slots__ = ("actions", "name", "queue_id")

    def __init__(self, actions: Actions, call: Leg, control_id: str, name: str) -> None:
        super().__init__(call, control_id, "queue", "enqueue")
        self.actions = actions
        self.name = name
        self.queue_id = actions.new_id()

    def send(self, now: float) -> None:
        body: JSONObject = {
            "status": self.state,
            "id": self.queue_id,
            "name": self.name,
            "position": 1 if self.state == "enqueue" else 0,
            "size": 1 if self.state == "enqueue" else 0,
        }
        self.actions.emit(self, "calling.call.queue", body, now)

    def halt(self, reason: str, now: float) -> None:
        self.state = "leave"
        self.send(now)


def _queue_enter(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
    control_id = control_id_of(params)
    name = string_param("queue_name", params.get("queue_name"))
    optional(params, "status_url", string_param)
    action = Queued(actions, call, control_id, name)
    refusal = not_answered(call) or actions.add(action)
    if refusal is not None:
        return refusal
    action.send(now)
    return reply("Enqueued")


def _queue_leave(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
    name = string_param("queue_name", params.get("queue_name"))
    queue_id = params.get("queue_id")
    for action in list(call.actions.values()):
        if not isinstance(action, Queued):
            continue
        if action.name == name and queue_id in (None, action.queue_id):
            actions.end(action, "stop", now)
            return reply("Left the queue")
    return reply("Queue not found", "404")


COMMANDS: dict[str, Handler] = {
    "calling.hold": _simple("Call held", event=("calling.call.hold", {"state": "hold"})),
    "calling.unhold": _simple("Call unheld", event=("calling.call.hold", {"state": "unhold"})),
    "calling.denoise": _simple("Denoising", event=("calling.call.denoise", {"denoised": True})),
    "calling.denoise.stop": _simple(
        "Denoise stopped", event=("calling.call.denoise", {"denoised": False})
    ),
    "calling.transfer": _simple("Transferring", _required("dest")),
    "calling.refer": _refer,
    "calling.bind_digit": _simple("Digit bound", _bind),
    "calling.clear_digit_bindings": _simple("Digit bindings cleared"),
    "calling.join_conference": _simple("Joining conference", _required("name")),
    "calling.leave_conference": _simple("Leaving conference", _required("conference_id")),
    "calling.join_room": _simple("Joining room", _required("name")),
    "calling.leave_room": _simple("Leaving room"),
    "calling.live_transcribe": _simple("Live transcribe", _action_object),
    "calling.live_translate": _simple("Live translate", _action_object),
    "calling.user_event": _simple("User event sent"),
    "calling.queue.enter": _queue_enter,
    "calling.queue.leave": _queue_leave,
}

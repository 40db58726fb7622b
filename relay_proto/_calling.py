"""The client's commands on calls: answer, end, actions and their controls, bridges.

``CallCommands`` validates a command (``_commands``, ``_verb_rules``) and queues its request
in the request table; it owns no state of its own (actions are recorded in the tracker's
``ActionTable``). ``ClientConnection`` exposes these methods; this module keeps the
connection to what ties the parts together.

Invariants:

* A command for a call that is not a live call of the session raises
  ``LocalProtocolError`` before anything is queued, as does any invalid param.
* An action is recorded before its start request can be answered, so no event or reply
  for it can arrive unrecognised.
* A call whose ``calling.pass`` the server accepted (``pass_call``, or ``execute`` naming
  the call) is the session's no more: it is forgotten without a hang-up (``CallLost``
  with ``passed``), and the server tells this session nothing more of it.
* ``abandon_action`` never leaves an action running without a handle: a start that has not
  gone out is withdrawn; one on its way is stopped as soon as the server accepts it; one
  accepted is stopped now.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from . import _commands as commands
from . import _validate as validate
from ._actions import VERBS, ActionRecord, verb_named
from ._errors import LocalProtocolError
from ._events import Event, MaxDurationReached
from ._messages import Messages
from ._records import EndLeg, Intent, StopAction, TrackedCall
from ._requests import PendingRequest, RequestTable
from ._tracker import CallTracker
from ._wire import JSONObject

_PLAY = VERBS["play"]


class CallCommands:
    """Commands on the calls of one session (see the module docstring)."""

    def __init__(
        self,
        *,
        requests: RequestTable,
        tracker: CallTracker,
        ready: Callable[[], bool],
        new_control_id: Callable[[], str],
    ) -> None:
        self._requests = requests
        self._tracker = tracker
        self._ready = ready
        self._new_control_id = new_control_id
        self.messages = Messages()

    def request(self, request: PendingRequest, params: JSONObject) -> str:
        return self._requests.add(request, params, send=self._ready())

    def live_call(self, call_id: str) -> TrackedCall:
        call = self._tracker.calls.get(call_id)
        if call is None:
            raise LocalProtocolError(f"call {call_id!r} is not a live call of this session")
        return call

    def call_request(self, call: TrackedCall, method: str, params: JSONObject) -> str:
        body = {"node_id": call.node_id, "call_id": call.call_id, **params}
        return self.request(PendingRequest(method, call_id=call.call_id), body)

    # ------------------------------------------------------------------ actions

    def play(self, call_id: str, params: JSONObject) -> tuple[str, str]:
        return self._start(self.live_call(call_id), _PLAY.name, params, None)

    def start_action(
        self, call_id: str, verb: str, params: Mapping[str, Any], control_id: str | None
    ) -> tuple[str, str]:
        call = self.live_call(call_id)
        row = verb_named(validate.non_empty_str("verb", verb))
        return self._start(call, row.name, row.build(params), control_id)

    def _start(
        self, call: TrackedCall, verb: str, params: JSONObject, control_id: str | None
    ) -> tuple[str, str]:
        row = VERBS.get(verb) or verb_named(verb)
        if control_id is None:
            control_id = self._new_control_id()
        else:
            validate.non_empty_str("control_id", control_id)
        if control_id in self._tracker.actions.running:
            raise LocalProtocolError(f"control_id {control_id!r} is already in use")
        body = {"node_id": call.node_id, "call_id": call.call_id, "control_id": control_id}
        body.update(params)
        request = PendingRequest(row.method, call_id=call.call_id, control_id=control_id)
        request_id = self.request(request, body)
        spec = params.get("collect")  # play_and_collect's flags are inside ``collect``
        continuous = (spec if isinstance(spec, dict) else params).get("continuous") is True
        self._tracker.add_action(control_id, call.call_id, row, request_id, continuous)
        return request_id, control_id

    def action_control(
        self,
        call_id: str,
        verb: str,
        control_id: str,
        control: str,
        params: Mapping[str, Any] | None,
    ) -> str:
        call = self.live_call(call_id)
        row = verb_named(validate.non_empty_str("verb", verb))
        method = row.controls.get(control)
        if method is None:
            raise LocalProtocolError(
                f"control: {row.name} has {sorted(row.controls) or 'no controls'}, not {control!r}"
            )
        body = validate.json_params("params", params or {})
        body["control_id"] = validate.non_empty_str("control_id", control_id)
        if control == "volume":
            body["volume"] = validate.volume("volume", body.get("volume"))
        return self.call_request(call, method, body)

    def play_control(self, call_id: str, control_id: str, action: str, volume: float | None) -> str:
        params = commands.play_control_params(control_id, action, volume)
        return self.call_request(self.live_call(call_id), f"calling.play.{action}", params)

    def abandon_action(self, control_id: str) -> StopAction | None:
        """Nobody will wait for this action: see the module docstring. Returns the stop to
        queue now, if any."""
        record = self._tracker.actions.running.get(control_id)
        if record is None:
            return None
        if self._requests.unsent(record.start_id):
            self._requests.withdraw(record.start_id)
            self._tracker.actions.forget(control_id)
            return None
        if not record.accepted:
            record.abandoned = True
            self._requests.mute(record.start_id)
            return None
        self._tracker.actions.forget(control_id)
        return self.stop_of(control_id, record)

    def stop_of(self, control_id: str, record: ActionRecord) -> StopAction | None:
        """The stop for an action nobody waits for (None if its verb cannot be stopped or
        its call is gone)."""
        method = record.verb.controls.get("stop")
        call = self._tracker.calls.get(record.call_id)
        if method is None or call is None:
            return None
        return StopAction(call.node_id, call.call_id, method, control_id)

    # ------------------------------------------------------------------ calls

    def end(self, call_id: str, reason: str, cleanup: bool) -> str:
        call = self.live_call(call_id)
        params = {
            "node_id": call.node_id,
            "call_id": call_id,
            "reason": validate.non_empty_str("reason", reason),
        }
        resend = params if cleanup else None
        return self.request(PendingRequest("calling.end", call_id, resend=resend), params)

    def execute(self, method: str, params: Mapping[str, Any], call_id: str | None) -> str:
        validate.non_empty_str("method", method)
        body = validate.json_params("params", params)
        if call_id is None:
            return self.request(PendingRequest(method), body)
        return self.call_request(self.live_call(call_id), method, body)

    def connect(
        self,
        call_id: str,
        devices: Any,
        *,
        ringback: Any,
        tag: str | None,
        max_duration: int | None,
        max_price_per_minute: float | None,
        status_url: str | None = None,
    ) -> str:
        call = self.live_call(call_id)
        params = commands.dial_params(
            devices,
            max_duration=max_duration,
            region=None,
            node_id=None,
            max_price_per_minute=max_price_per_minute,
        )
        if tag is None:
            del params["tag"]
        else:
            params["tag"] = validate.non_empty_str("tag", tag)
        if ringback is not None:
            params["ringback"] = validate.media_list(ringback)
        if status_url is not None:
            params["status_url"] = validate.non_empty_str("status_url", status_url)
        request_id = self.call_request(call, "calling.connect", params)
        self._tracker.bridges.requested(call.call_id)
        return request_id

    # ------------------------------------------------------------------ messages

    def send_message(self, params: JSONObject) -> str:
        request_id = self.request(PendingRequest("messaging.send"), params)
        self.messages.in_flight.add(request_id)
        return request_id

    # ------------------------------------------------------------------ outcomes

    def accepted(
        self, request_id: str, request: PendingRequest, result: JSONObject, events: list[Event]
    ) -> None:
        """A request succeeded: an action's start accepted, a message named, a call
        passed (no longer this session's: forgotten without a hang-up). The connection
        calls it only for these (``_connection._ACCEPT_TRACKED``)."""
        if request.control_id is not None:
            record = self._tracker.actions.accepted(request.control_id)
            if record is not None:  # abandoned while its start was on its way: stop it
                stop = self.stop_of(request.control_id, record)
                if stop is not None:
                    self.apply([stop], events)
        elif request.method == "messaging.send":
            self.messages.accepted(request_id, result, events)
        elif request.method == "calling.pass" and request.call_id is not None:
            self._tracker.call_gone(request.call_id, events, passed=True)

    def forget_start(
        self, request_id: str, request: PendingRequest, events: list[Event], *, lost: bool = False
    ) -> None:
        """A request failed (``lost``: its reply went with the socket). An action's start
        refused: nothing runs. Lost: it may run, and nobody will hold a handle to it
        (the caller is told the start failed): it is stopped."""
        if request.control_id is not None:
            record = self._tracker.actions.running.get(request.control_id)
            self._tracker.actions.forget(request.control_id)
            running = record is not None and lost and request.sent  # it went out: it may run
            stop = self.stop_of(request.control_id, record) if running and record else None
            if stop is not None:
                self.apply([stop], events)
        elif request.method == "messaging.send":
            self.messages.failed(request_id, events)

    def apply(self, intents: list[Intent], events: list[Event]) -> None:
        """Turn the tracker's intents into frames (and the events that report them)."""
        for intent in intents:
            if isinstance(intent, EndLeg):
                params = {"node_id": intent.node_id, "call_id": intent.call_id}
                params["reason"] = intent.reason
                request = PendingRequest(
                    "calling.end", call_id=intent.call_id, surface=False, resend=params
                )
                request_id = self.request(request, params)
                if intent.max_duration:
                    events.append(MaxDurationReached(call_id=intent.call_id, request_id=request_id))
            elif isinstance(intent, StopAction):
                params = {"node_id": intent.node_id, "call_id": intent.call_id}
                params["control_id"] = intent.control_id
                request = PendingRequest(
                    intent.method, call_id=intent.call_id, surface=False, resend=params
                )
                self.request(request, params)
            else:
                self._requests.withdraw_unsent(intent.request_id)

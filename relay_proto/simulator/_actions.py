"""The generic engine behind every action verb of the simulator but play.

``Actions`` keeps the running ``Action`` records (``_legs``) of every call, their one timer
each, pause/resume of that timer, the per-call script lookup, and the emission of action
events (``call_id``, ``node_id``, ``control_id`` first). The verbs (``_media``, ``_input``)
are command handlers over it: ``Handler(actions, call, params, now) -> reply``.

Invariants:
- An action is in its call's ``actions`` and in ``_running`` exactly while it is not
  terminal; ``remove`` takes it out of both and cancels its timer, before its terminal
  event is emitted.
- An action has at most one pending timer; while paused it has none and ``remaining``
  holds the time its step still had to wait.
- ``call_ended`` halts every action of a call (terminal event each) and is run before the
  call's ``ending``/``ended`` state events; ``drop`` forgets them silently.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Protocol

from .. import _validate as validate
from .. import _wire as wire
from .._errors import LocalProtocolError
from .._events import CallState
from .._ids import IdFactory
from .._timers import TimerQueue
from .._wire import JSONObject
from ._legs import Action, Leg, LiveAction, TimerCallback
from ._scenario import Scenario
from ._script import CallScript, Input

__all__ = ["OK", "Actions", "Handler", "Switchboard", "not_answered", "reply"]

OK = "200"


class Switchboard(Protocol):
    """What the engine needs of the switch."""

    @property
    def scenario(self) -> Scenario: ...

    def play_seconds(self, media: object) -> float:
        """How long a ``play`` list lasts (validated with the play rules)."""


def reply(message: str, code: str = OK) -> JSONObject:
    return {"code": code, "message": message}


def not_answered(call: Leg) -> JSONObject | None:
    """The ``409`` a verb gets on a call that is not answered yet (as play does)."""
    if call.state is CallState.ANSWERED:
        return None
    return reply("Call is not answered", "409")


class Actions:
    """Every running action of the switch, and the tools the verbs share."""

    def __init__(
        self, *, timers: TimerQueue[TimerCallback], switch: Switchboard, new_id: IdFactory
    ) -> None:
        self._timers = timers
        self.switch = switch
        self.new_id = new_id
        self._running: dict[Action, None] = {}

    # ---- queries ---------------------------------------------------------------------

    def live(self) -> list[LiveAction]:
        return [action.snapshot() for action in self._running]

    def script_for(self, call: Leg) -> CallScript:
        """The far end's script: the call's own, else its destination's in the scenario
        (an inbound call's far end is its caller, ``from_number``)."""
        if call.script is not None:
            return call.script
        params = call.device.get("params", {})
        if call.direction == "inbound":
            key = params.get("from_number")
        else:
            key = params.get("to_number", params.get("to"))
        return self.switch.scenario.outcome_for(key if isinstance(key, str) else None).script

    def next_input(self, call: Leg) -> Input:
        """The far end's answer to this call's next collect."""
        index = call.inputs_taken
        call.inputs_taken += 1
        return self.script_for(call).input_for(index)

    # ---- lifecycle -------------------------------------------------------------------

    def add(self, action: Action) -> JSONObject | None:
        """Register a new action; a ``409`` reply when its control_id is taken."""
        call = action.call
        if action.control_id in call.actions:
            return reply(f"control_id {action.control_id!r} is already running", "409")
        call.actions[action.control_id] = action
        self._running[action] = None
        return None

    def remove(self, action: Action) -> None:
        self.disarm(action)
        del action.call.actions[action.control_id]
        del self._running[action]

    def end(self, action: Action, reason: str, now: float) -> None:
        """Take ``action`` out and have it send its terminal event."""
        self.remove(action)
        action.halt(reason, now)

    def call_ended(self, call: Leg, now: float) -> None:
        for action in list(call.actions.values()):
            self.end(action, "ended", now)

    def drop(self, call: Leg) -> None:
        for action in list(call.actions.values()):
            self.remove(action)

    def find(self, call: Leg, params: JSONObject, verbs: tuple[str, ...]) -> Action | None:
        control_id = validate.non_empty_str("control_id", params.get("control_id"))
        action = call.actions.get(control_id)
        return action if action is not None and action.verb in verbs else None

    # ---- timers ----------------------------------------------------------------------

    def arm(self, action: Action, when: float, step: TimerCallback) -> None:
        """Run ``step(when)`` at ``when`` (replacing any pending step)."""
        self.disarm(action)
        action.deadline, action.step = when, step
        action.timer = self._timers.schedule(when, partial(self._fire, action, step))

    def _fire(self, action: Action, step: TimerCallback, when: float) -> None:
        action.timer = None
        step(when)

    def disarm(self, action: Action) -> None:
        if action.timer is not None:
            self._timers.cancel(action.timer)
            action.timer = None

    def pause(self, action: Action, now: float) -> None:
        if action.timer is not None:
            action.remaining = max(action.deadline - now, 0.0)
            self.disarm(action)

    def resume(self, action: Action, now: float) -> None:
        remaining, step = action.remaining, action.step
        action.remaining = None
        if remaining is not None and step is not None:
            self.arm(action, now + remaining, step)

    # ---- emission --------------------------------------------------------------------

    def emit(self, action: Action, event_type: str, params: JSONObject, now: float) -> None:
        """An event of ``action``: its ids first, then ``params``."""
        call = action.call
        body: JSONObject = {
            "call_id": call.call_id,
            "node_id": call.node_id,
            "control_id": action.control_id,
            **params,
        }
        call.sink.emit(event_type, wire.dumps(body), now)

    def emit_call(self, call: Leg, event_type: str, params: JSONObject, now: float) -> None:
        """An event of a call that is not an action's (hold, denoise, refer, ...)."""
        body: JSONObject = {"call_id": call.call_id, "node_id": call.node_id, **params}
        call.sink.emit(event_type, wire.dumps(body), now)


Handler = Callable[[Actions, Leg, JSONObject, float], JSONObject]


def control_id_of(params: JSONObject) -> str:
    return validate.non_empty_str("control_id", params.get("control_id"))


def optional(params: JSONObject, key: str, check: Callable[[str, object], object]) -> None:
    """Check ``params[key]`` with ``check`` when present."""
    if key in params:
        check(key, params[key])


def object_param(where: str, value: object) -> JSONObject:
    if not isinstance(value, dict):
        raise LocalProtocolError(f"{where}: must be an object")
    return value


def bool_param(where: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise LocalProtocolError(f"{where}: must be a boolean")
    return value


def string_param(where: str, value: object) -> str:
    return validate.non_empty_str(where, value)


def seconds_param(where: str, value: object, default: float) -> float:
    """A timeout param (non-negative seconds); ``default`` when absent (``None``)."""
    if value is None:
        return default
    seconds = validate.number(where, value)
    if seconds < 0:
        raise LocalProtocolError(f"{where}: must be >= 0, got {value!r}")
    return seconds


def one_of(where: str, value: object, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise LocalProtocolError(f"{where}: must be one of {list(allowed)}, got {value!r}")
    return str(value)


def stopper(verbs: tuple[str, ...], what: str) -> Handler:
    """The ``<verb>.stop`` command of a verb: the action ends with reason ``stop``."""

    def stop(actions: Actions, call: Leg, params: JSONObject, now: float) -> JSONObject:
        action = actions.find(call, params, verbs)
        if action is None:
            return reply(f"{what} not found", "404")
        actions.end(action, "stop", now)
        return reply("Stopped")

    return stop

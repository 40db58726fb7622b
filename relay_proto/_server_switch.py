"""The simulated switch: call legs, dials, plays, and the clock-driven timers behind them.

Sans-IO and clock-free: every time is an argument; timers sit in the ``TimerQueue`` heap
(``_server_base``) and fire only when the simulator pops them.

Invariants:
- A leg's state only moves along ``_TRANSITIONS`` (created -> ringing -> answered -> ending
  -> ended, forward skips allowed). ``_live`` holds exactly the legs not yet ENDED.
- A dial is in ``_dials`` (keyed by ``(session protocol, tag)``) exactly while unresolved.
  It resolves once: ``answered`` (the first leg to answer wins; the other legs of its group
  end with ``cancel``) or ``failed`` (every leg of the last group ended unanswered). Group
  n+1 starts only after every leg of group n has ended. ``_Dial.active`` holds the legs of
  the current group that have not ended; a leg belongs to a dial (``_Call.dial``) only
  while it is in that map.
- A leg has at most one pending timer (ring outcome, then max_duration / far-end hangup);
  it is cancelled when the leg ends.
- A play is in its call's ``plays`` exactly while it is not terminal; its finish timer is
  pending only while it is playing (absent while paused or when it loops forever).
- Events are handed to the owning session's sink in the order generated, stamped with the
  simulated time at which they happen (a timer's own deadline, not the time it was run).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from functools import partial
from json.encoder import encode_basestring_ascii as _json_str
from typing import Any

from ._events import CallState, PlayState
from ._scenario import OutcomeKind, Scenario
from ._server_base import (
    MAX_NUMBER,
    EventSink,
    LiveCall,
    RpcError,
    Timer,
    TimerQueue,
    check_volume,
    destination,
    get_control_id,
    media_seconds,
    validate_dial,
)
from ._wire import dumps

__all__ = ["Switch"]

JSONObject = dict[str, Any]

_OK = "200"
_NOT_FOUND: JSONObject = {"code": "404", "message": "Call not found"}
_DEFAULT_MAX_HISTORY = 100_000

_TRANSITIONS: dict[CallState, frozenset[CallState]] = {
    CallState.CREATED: frozenset(
        {CallState.RINGING, CallState.ANSWERED, CallState.ENDING, CallState.ENDED}
    ),
    CallState.RINGING: frozenset({CallState.ANSWERED, CallState.ENDING, CallState.ENDED}),
    CallState.ANSWERED: frozenset({CallState.ENDING, CallState.ENDED}),
    CallState.ENDING: frozenset({CallState.ENDED}),
    CallState.ENDED: frozenset(),
}
_STATE_JSON = {state: _json_str(state.value) for state in CallState}


class _Dial:
    __slots__ = ("active", "groups", "index", "max_duration", "node_id", "sink", "tag")

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
        self.active: dict[str, _Call] = {}


class _Call:
    __slots__ = (
        "call_id",
        "context",
        "device",
        "device_json",
        "dial",
        "direction",
        "end_reason",
        "hangup_after",
        "json_head",
        "json_tail",
        "max_duration",
        "node_id",
        "plays",
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
        context: str | None = None,
    ) -> None:
        self.call_id = call_id
        self.node_id = node_id
        self.tag = tag
        self.device = device
        self.direction = direction
        self.sink = sink
        self.state = state
        self.context = context
        self.end_reason: str | None = None
        self.dial: _Dial | None = None
        self.timer: Timer | None = None
        self.hangup_after: float | None = None
        self.max_duration: float | None = None
        self.plays: dict[str, _Play] = {}
        # The fixed parts of this leg's event params, JSON-encoded once: a leg publishes
        # four or five events that differ only in their state (see ``Switch._publish``).
        self.device_json = dumps(device)
        self.json_head = (
            f'{{"call_id":{_json_str(call_id)},"node_id":{_json_str(node_id)}'
            f',"tag":{_json_str(tag)},"call_state":'
        )
        self.json_tail = f',"direction":{_json_str(direction)},"device":{self.device_json}'

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

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class _Play:
    __slots__ = ("call", "control_id", "remaining", "started", "state", "timer")

    def __init__(self, call: _Call, control_id: str, seconds: float, now: float) -> None:
        self.call = call
        self.control_id = control_id
        self.remaining = seconds
        self.started = now
        self.state = PlayState.PLAYING
        self.timer: Timer | None = None


class Switch:
    """Calls, dials and plays of every session; driven by commands and by timers."""

    def __init__(
        self,
        *,
        scenario: Scenario,
        timers: TimerQueue,
        new_id: Callable[[], str],
        node_id: str,
        max_history: int = _DEFAULT_MAX_HISTORY,
    ) -> None:
        self.scenario = scenario
        self.node_id = node_id
        self._timers = timers
        self._new_id = new_id
        self._live: dict[str, _Call] = {}
        self._history: deque[_Call] = deque(maxlen=max_history)
        self._dials: dict[tuple[str, str], _Dial] = {}

    # ---- queries ---------------------------------------------------------------------

    def live_calls(self) -> list[LiveCall]:
        return [call.snapshot() for call in self._live.values()]

    def all_calls(self) -> list[LiveCall]:
        return [call.snapshot() for call in self._history]

    def pending_dials(self) -> int:
        return len(self._dials)

    # ---- commands --------------------------------------------------------------------

    def command(self, sink: EventSink, method: str, params: JSONObject, now: float) -> JSONObject:
        """Handle one ``calling.*`` request; returns its result or raises ``RpcError``."""
        if method == "calling.dial":
            return self._dial(sink, params, now)
        node_id, call_id = params.get("node_id"), params.get("call_id")
        if not isinstance(node_id, str) or not isinstance(call_id, str):
            raise RpcError(-32602, f"{method} needs string node_id and call_id")
        call = self._live.get(call_id)
        if call is None or call.node_id != node_id or call.sink.project != sink.project:
            return dict(_NOT_FOUND)
        handler = _COMMANDS.get(method)
        if handler is None:
            return {"code": _OK, "message": "OK"}
        return handler(self, call, params, now)

    def inbound(
        self,
        sink: EventSink,
        *,
        context: str,
        from_number: str,
        to_number: str,
        now: float,
        hangup_after: float | None = None,
    ) -> str:
        call = _Call(
            call_id=self._new_id(),
            node_id=self.node_id,
            tag=self._new_id(),
            device={
                "type": "phone",
                "params": {"from_number": from_number, "to_number": to_number},
            },
            direction="inbound",
            sink=sink,
            state=CallState.RINGING,
            context=context,
        )
        call.hangup_after = hangup_after
        self._register(call)
        sink.emit("calling.call.receive", self._state_params(call), now)
        when = now + self.scenario.inbound_ring_timeout
        call.timer = self._timers.schedule(when, partial(self._timed_end, call, "noAnswer", False))
        return call.call_id

    def drop_session(self, sink: EventSink) -> None:
        """The session expired: end its calls and dials silently (nobody is listening)."""
        for call in [c for c in self._live.values() if c.sink is sink]:
            call.cancel_timer()
            for play in call.plays.values():
                if play.timer is not None:
                    play.timer.cancel()
            call.plays.clear()
            call.end_reason = "hangup" if call.state is CallState.ANSWERED else "cancel"
            call.state = CallState.ENDED
            call.dial = None
            del self._live[call.call_id]
        for key in [k for k in self._dials if k[0] == sink.protocol]:
            del self._dials[key]

    # ---- dialing ---------------------------------------------------------------------

    def _dial(self, sink: EventSink, params: JSONObject, now: float) -> JSONObject:
        tag, groups, node_id, max_duration = validate_dial(params)
        if (sink.protocol, tag) in self._dials:
            return {"code": "409", "message": f"a dial with tag {tag!r} is already pending"}
        faults = self.scenario.faults
        refusal = faults.dial_refused
        if refusal is None or faults.create_call_after_refusal:
            dial = _Dial(sink, tag, node_id or self.node_id, groups, max_duration)
            self._dials[sink.protocol, tag] = dial
            self._emit_dial(dial, "dialing", now)
            self._start_group(dial, now)
        if refusal is None:
            return {"code": _OK, "message": "Dialing"}
        if isinstance(refusal.code, int):
            raise RpcError(refusal.code, refusal.message)
        return {"code": refusal.code, "message": refusal.message}

    def _start_group(self, dial: _Dial, now: float) -> None:
        legs: list[_Call] = []
        for device in dial.groups[dial.index]:
            call = _Call(
                call_id=self._new_id(),
                node_id=dial.node_id,
                tag=dial.tag,
                device=device,
                direction="outbound",
                sink=dial.sink,
                state=CallState.CREATED,
            )
            call.dial = dial
            device_limit = device["params"].get("max_duration")
            call.max_duration = device_limit if device_limit is not None else dial.max_duration
            self._register(call)
            dial.active[call.call_id] = call
            self._publish(call, now)
            legs.append(call)
        scenario = self.scenario
        for call in legs:
            params = call.device["params"]
            outcome = scenario.outcome_for(destination(call.device))
            call.hangup_after = outcome.hangup_after
            kind = outcome.kind
            if kind is OutcomeKind.ERROR:
                when = now + outcome.after
            else:
                self._move(call, CallState.RINGING, now)
                timeout = params.get("timeout", scenario.ring_timeout)
                if kind is OutcomeKind.NO_ANSWER or outcome.after >= timeout:
                    kind, when = OutcomeKind.NO_ANSWER, now + timeout
                else:
                    when = now + outcome.after
            call.timer = self._timers.schedule(when, partial(self._leg_outcome, call, kind))

    def _leg_outcome(self, call: _Call, kind: OutcomeKind, when: float) -> None:
        call.timer = None
        if kind is not OutcomeKind.ANSWER:
            self._end(call, kind.end_reason or "error", when, ending=False)
            return
        dial = call.dial
        if dial is None:  # pragma: no cover - a leg's outcome timer dies with its dial
            raise AssertionError("outcome for a leg outside any dial")
        first = self.scenario.faults.dial_event_first
        if first:
            self._emit_dial(dial, "answered", when, winner=call)
        self._move(call, CallState.ANSWERED, when)
        del dial.active[call.call_id]
        call.dial = None
        losers = list(dial.active.values())
        dial.active.clear()
        for loser in losers:
            loser.dial = None
            self._end(loser, "cancel", when, ending=False)
        if not first:
            self._emit_dial(dial, "answered", when, winner=call)
        del self._dials[dial.sink.protocol, dial.tag]
        self._arm_answered(call, when)

    def _arm_answered(self, call: _Call, now: float) -> None:
        """Schedule the end of an answered call: max_duration or far-end hangup, first wins."""
        limit, hangup = call.max_duration, call.hangup_after
        if limit is not None and (hangup is None or limit <= hangup):
            call.timer = self._timers.schedule(
                now + limit, partial(self._timed_end, call, "max_duration", True)
            )
        elif hangup is not None:
            call.timer = self._timers.schedule(
                now + hangup, partial(self._timed_end, call, "hangup", True)
            )

    def _timed_end(self, call: _Call, reason: str, ending: bool, when: float) -> None:
        call.timer = None
        self._end(call, reason, when, ending=ending)

    def _end(self, call: _Call, reason: str, now: float, *, ending: bool) -> None:
        call.cancel_timer()
        for play in list(call.plays.values()):
            self._finish_play(play, PlayState.ERROR, now)
        if ending:
            self._move(call, CallState.ENDING, now, reason)
        self._move(call, CallState.ENDED, now, reason)
        del self._live[call.call_id]
        dial = call.dial
        if dial is None:
            return
        call.dial = None
        del dial.active[call.call_id]
        if dial.active:
            return
        dial.index += 1
        if dial.index < len(dial.groups):
            self._start_group(dial, now)
        else:
            self._emit_dial(dial, "failed", now)
            del self._dials[dial.sink.protocol, dial.tag]

    # ---- call commands ---------------------------------------------------------------

    def _cmd_end(self, call: _Call, params: JSONObject, now: float) -> JSONObject:
        reason = params.get("reason", "hangup")
        if not isinstance(reason, str) or not reason:
            raise RpcError(-32602, "calling.end reason must be a non-empty string")
        if not self.scenario.faults.ignore_end:
            self._end(call, reason, now, ending=True)
        return {"code": _OK, "message": "Ending call"}

    def _cmd_answer(self, call: _Call, params: JSONObject, now: float) -> JSONObject:
        if call.state is CallState.ANSWERED:
            return {"code": _OK, "message": "Already answered"}
        if call.direction != "inbound":
            return {"code": "400", "message": "only an inbound call can be answered"}
        call.cancel_timer()
        self._move(call, CallState.ANSWERED, now)
        self._arm_answered(call, now)
        return {"code": _OK, "message": "Answered"}

    def _cmd_play(self, call: _Call, params: JSONObject, now: float) -> JSONObject:
        control_id = get_control_id(params)
        media = params.get("play")
        if not isinstance(media, list) or not media:
            raise RpcError(-32602, "calling.play needs a non-empty play list")
        seconds = sum(media_seconds(item, self.scenario) for item in media)
        check_volume(params)
        loop = params.get("loop", 1)
        if isinstance(loop, bool) or not isinstance(loop, int) or not 0 <= loop <= MAX_NUMBER:
            raise RpcError(-32602, "calling.play loop must be an int >= 0 (0 = forever)")
        if call.state is not CallState.ANSWERED:
            return {"code": "404", "message": "Call is not answered"}
        if control_id in call.plays:
            return {"code": "409", "message": f"control_id {control_id!r} is already playing"}
        play = _Play(call, control_id, seconds * loop if loop else math.inf, now)
        call.plays[control_id] = play
        self._emit_play(play, now)
        self._arm_play(play, now)
        return {"code": _OK, "message": "Playing"}

    def _arm_play(self, play: _Play, now: float) -> None:
        play.started = now
        if math.isfinite(play.remaining):
            play.timer = self._timers.schedule(now + play.remaining, partial(self._play_done, play))

    def _play_done(self, play: _Play, when: float) -> None:
        play.timer = None
        self._finish_play(play, PlayState.FINISHED, when)

    def _finish_play(self, play: _Play, state: PlayState, now: float) -> None:
        if play.timer is not None:
            play.timer.cancel()
            play.timer = None
        del play.call.plays[play.control_id]
        play.state = state
        self._emit_play(play, now)

    def _find_play(self, call: _Call, params: JSONObject) -> _Play | None:
        return call.plays.get(get_control_id(params))

    def _cmd_play_stop(self, call: _Call, params: JSONObject, now: float) -> JSONObject:
        play = self._find_play(call, params)
        if play is None:
            return {"code": "404", "message": "Play not found"}
        self._finish_play(play, PlayState.FINISHED, now)
        return {"code": _OK, "message": "Stopped"}

    def _cmd_play_pause(self, call: _Call, params: JSONObject, now: float) -> JSONObject:
        play = self._find_play(call, params)
        if play is None:
            return {"code": "404", "message": "Play not found"}
        if play.state is PlayState.PLAYING:
            if play.timer is not None:
                play.timer.cancel()
                play.timer = None
            play.remaining -= now - play.started
            play.state = PlayState.PAUSED
            self._emit_play(play, now)
        return {"code": _OK, "message": "Paused"}

    def _cmd_play_resume(self, call: _Call, params: JSONObject, now: float) -> JSONObject:
        play = self._find_play(call, params)
        if play is None:
            return {"code": "404", "message": "Play not found"}
        if play.state is PlayState.PAUSED:
            play.state = PlayState.PLAYING
            self._emit_play(play, now)
            self._arm_play(play, now)
        return {"code": _OK, "message": "Resumed"}

    def _cmd_play_volume(self, call: _Call, params: JSONObject, now: float) -> JSONObject:
        play = self._find_play(call, params)
        if play is None:
            return {"code": "404", "message": "Play not found"}
        if "volume" not in params:
            raise RpcError(-32602, "calling.play.volume needs a volume")
        check_volume(params)
        return {"code": _OK, "message": "Volume set"}

    # ---- emission --------------------------------------------------------------------

    def _register(self, call: _Call) -> None:
        self._live[call.call_id] = call
        self._history.append(call)

    def _move(self, call: _Call, state: CallState, now: float, reason: str | None = None) -> None:
        if state not in _TRANSITIONS[call.state]:  # pragma: no cover - guarded by callers
            raise AssertionError(f"illegal transition {call.state} -> {state}")
        call.state = state
        if reason is not None:
            call.end_reason = reason
        self._publish(call, now)

    def _state_params(self, call: _Call) -> str:
        """The JSON text of ``{call_id, node_id, tag, call_state, direction, device}``
        (plus ``end_reason`` and ``context`` when set), from the leg's pre-encoded parts."""
        extra = ""
        if call.end_reason is not None:
            extra = f',"end_reason":{_json_str(call.end_reason)}'
        if call.context is not None:
            extra += f',"context":{_json_str(call.context)}'
        return f"{call.json_head}{_STATE_JSON[call.state]}{call.json_tail}{extra}}}"

    def _publish(self, call: _Call, now: float) -> None:
        call.sink.emit("calling.call.state", self._state_params(call), now)

    def _emit_dial(self, dial: _Dial, state: str, now: float, winner: _Call | None = None) -> None:
        # {tag, node_id, dial_state[, call: {call_id, node_id, tag, device, dial_winner}]}
        text = (
            f'{{"tag":{_json_str(dial.tag)},"node_id":{_json_str(dial.node_id)}'
            f',"dial_state":{_json_str(state)}'
        )
        if winner is not None:  # its device is already encoded
            text += (
                f',"call":{{"call_id":{_json_str(winner.call_id)}'
                f',"node_id":{_json_str(winner.node_id)},"tag":{_json_str(winner.tag)}'
                f',"device":{winner.device_json},"dial_winner":true}}'
            )
        dial.sink.emit("calling.call.dial", text + "}", now)

    def _emit_play(self, play: _Play, now: float) -> None:
        call = play.call
        params = {
            "call_id": call.call_id,
            "node_id": call.node_id,
            "control_id": play.control_id,
            "state": play.state.value,
        }
        call.sink.emit("calling.call.play", dumps(params), now)


_Command = Callable[[Switch, _Call, JSONObject, float], JSONObject]
_COMMANDS: dict[str, _Command] = {
    "calling.end": Switch._cmd_end,
    "calling.answer": Switch._cmd_answer,
    "calling.play": Switch._cmd_play,
    "calling.play.stop": Switch._cmd_play_stop,
    "calling.play.pause": Switch._cmd_play_pause,
    "calling.play.resume": Switch._cmd_play_resume,
    "calling.play.volume": Switch._cmd_play_volume,
}

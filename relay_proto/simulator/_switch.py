"""The simulated switch: call legs, dials, plays, and the clock-driven timers behind them.

Sans-IO and clock-free: every time is an argument; timers sit in the shared ``TimerQueue``
(payload: a callback taking the timer's own deadline) and fire only when the simulator
pops them. Request params are checked with the client's rules (``_validate``); a failure
comes out as ``LocalProtocolError`` (answered with a result ``code`` ``"400"``, as the
calling API answers) and JSON-RPC-level refusals (an unknown method, a scripted refusal)
as ``RpcError``. Event params are JSON text built by ``_wire``.

Invariants:
- A leg's state only moves along ``_TRANSITIONS`` (created -> ringing -> answered -> ending
  -> ended, forward skips allowed). ``_live`` holds exactly the legs not yet ENDED.
- A dial is in ``_dials`` (keyed by ``(session protocol, tag)``) exactly while unresolved.
  It resolves once: ``answered`` (the first leg to answer wins; the other legs of its group
  end with ``cancel``) or ``failed`` (every leg of the last group ended unanswered). Group
  n+1 starts only after every leg of group n has ended. ``Dial.active`` holds the legs of
  the current group that have not ended; a leg belongs to a dial (``Leg.dial``) only
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

from .. import _validate as validate
from .. import _wire as wire
from .._errors import LocalProtocolError
from .._events import CallState, PlayState
from .._ids import IdFactory
from .._timers import TimerQueue
from .._wire import JSONObject
from . import _input, _media, _plain
from ._actions import Actions, Handler
from ._legs import Dial, EventSink, Leg, LiveAction, LiveCall, Play, RpcError, TimerCallback
from ._scenario import OutcomeKind, Scenario
from ._script import CallScript

__all__ = ["Switch"]

_OK = "200"
_NOT_FOUND: JSONObject = {"code": "404", "message": "Call not found"}
#: A verb on a call that exists but is not answered yet (see docs/simulator.md, Fidelity).
_NOT_ANSWERED: JSONObject = {"code": "409", "message": "Call is not answered"}
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
_PLAYABLE = frozenset({"tts", "audio", "ringtone", "silence"})
#: The nodes calls are spread over when no ``node_id`` is fixed (a real space has many).
_NODES = tuple(f"sim-node-{n}@local" for n in range(1, 5))
#: Each call state as JSON text, by ``rank`` (encoded once, not per event).
_STATE_JSON = tuple(wire.encode_string(s.value) for s in sorted(CallState, key=lambda s: s.rank))


class Switch:
    """Calls, dials and plays of every session; driven by commands and by timers."""

    def __init__(
        self,
        *,
        scenario: Scenario,
        timers: TimerQueue[TimerCallback],
        new_id: IdFactory,
        node_id: str | None = None,
        max_history: int = _DEFAULT_MAX_HISTORY,
    ) -> None:
        self.scenario = scenario
        #: Every call's node when set; None: calls take turns on ``_NODES``.
        self.node_id = node_id
        self._node_turn = 0
        self._timers = timers
        self._new_id = new_id
        self._live: dict[str, Leg] = {}
        self._history: deque[Leg] = deque(maxlen=max_history)
        self._dials: dict[tuple[str, str], Dial] = {}
        #: Every running action but plays (record, collect, detect, tap, ...).
        self.actions = Actions(timers=timers, switch=self, new_id=new_id)

    # ---- queries ---------------------------------------------------------------------

    def live_calls(self) -> list[LiveCall]:
        return [call.snapshot() for call in self._live.values()]

    def live_count(self) -> int:
        return len(self._live)

    def all_calls(self) -> list[LiveCall]:
        return [call.snapshot() for call in self._history]

    def pending_dials(self) -> int:
        return len(self._dials)

    def live_actions(self) -> list[LiveAction]:
        return self.actions.live()

    # ---- commands --------------------------------------------------------------------

    def command(self, sink: EventSink, method: str, params: JSONObject, now: float) -> JSONObject:
        """Handle one ``calling.*`` request; returns its result or raises ``RpcError``
        (or ``LocalProtocolError`` when a param breaks the shared rules)."""
        if method == "calling.dial":
            return self._dial(sink, params, now)
        handler = _COMMANDS.get(method)
        if handler is None:  # never a silent 200: the app would wait for events forever
            raise RpcError(-32601, f"Method not found: {method}")
        node_id, call_id = params.get("node_id"), params.get("call_id")
        if not isinstance(node_id, str) or not isinstance(call_id, str):
            raise LocalProtocolError(f"{method} needs string node_id and call_id")
        call = self._live.get(call_id)
        if call is None or call.node_id != node_id or call.sink.project != sink.project:
            return dict(_NOT_FOUND)
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
        script: CallScript | None = None,
    ) -> str:
        new_id = self._new_id
        call = Leg(
            call_id=new_id(),
            node_id=self._next_node(),
            tag=new_id(),
            device={
                "type": "phone",
                "params": {"from_number": from_number, "to_number": to_number},
            },
            direction="inbound",
            sink=sink,
            state=CallState.CREATED,  # what the official fixtures offer
            segment_id=new_id(),
            context=context,
        )
        call.hangup_after = hangup_after
        call.script = script
        self._register(call)
        self._publish(call, now, "calling.call.receive")
        when = now + self.scenario.inbound_ring_timeout
        call.timer = self._timers.schedule(when, partial(self._timed_end, call, "noAnswer", False))
        return call.call_id

    def drop_session(self, sink: EventSink) -> None:
        """The session expired: end its calls and dials silently (nobody is listening)."""
        for call in [c for c in self._live.values() if c.sink is sink]:
            self._stop_timer(call)
            for play in call.plays.values():
                self._stop_timer(play)
            call.plays.clear()
            self.actions.drop(call)
            call.end_reason = "hangup" if call.state is CallState.ANSWERED else "cancel"
            call.state = CallState.ENDED
            call.dial = None
            del self._live[call.call_id]
        for key in [k for k in self._dials if k[0] == sink.protocol]:
            del self._dials[key]

    # ---- dialing ---------------------------------------------------------------------

    def _dial(self, sink: EventSink, params: JSONObject, now: float) -> JSONObject:
        tag, groups, node_id, max_duration = validate.check_dial(params)
        if (sink.protocol, tag) in self._dials:
            return {"code": "409", "message": f"a dial with tag {tag!r} is already pending"}
        faults = self.scenario.faults
        refusal = faults.dial_refused
        if refusal is None or faults.create_call_after_refusal:
            dial = Dial(sink, tag, node_id or self._next_node(), groups, max_duration)
            dial.pinned = node_id
            self._dials[sink.protocol, tag] = dial
            self._emit_dial(dial, "dialing", now)
            self._start_group(dial, now)
        if refusal is None:
            return {"code": _OK, "message": "Dialing"}
        if isinstance(refusal.code, int):
            raise RpcError(refusal.code, refusal.message)
        return {"code": refusal.code, "message": refusal.message}

    def _start_group(self, dial: Dial, now: float) -> None:
        legs: list[Leg] = []
        new_id = self._new_id
        for device in dial.groups[dial.index]:
            call = Leg(
                call_id=new_id(),
                node_id=dial.pinned or self._next_node(),
                tag=dial.tag,
                device=device,
                direction="outbound",
                sink=dial.sink,
                state=CallState.CREATED,
                segment_id=new_id(),
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
            outcome = scenario.outcome_for(_destination(call.device))
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

    def _leg_outcome(self, call: Leg, kind: OutcomeKind, when: float) -> None:
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

    def _arm_answered(self, call: Leg, now: float) -> None:
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

    def _timed_end(self, call: Leg, reason: str, ending: bool, when: float) -> None:
        call.timer = None
        self._end(call, reason, when, ending=ending)

    def _end(
        self, call: Leg, reason: str, now: float, *, ending: bool, source: str = "endpoint"
    ) -> None:
        """End ``call``; ``source`` says who ended it (``client``: a ``calling.end``)."""
        self._stop_timer(call)
        for play in list(call.plays.values()):
            self._finish_play(play, PlayState.ERROR, now)
        if call.actions:
            self.actions.call_ended(call, now)
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
            self._emit_dial(dial, "failed", now, failure=(reason, source))
            del self._dials[dial.sink.protocol, dial.tag]

    # ---- call commands ---------------------------------------------------------------

    def _cmd_end(self, call: Leg, params: JSONObject, now: float) -> JSONObject:
        reason = validate.non_empty_str("reason", params.get("reason", "hangup"))
        if not self.scenario.faults.ignore_end:
            self._end(call, reason, now, ending=True, source="client")
        return {"code": _OK, "message": "Ending call"}

    def _cmd_answer(self, call: Leg, params: JSONObject, now: float) -> JSONObject:
        if call.state is CallState.ANSWERED:
            return {"code": _OK, "message": "Already answered"}
        if call.direction != "inbound":
            return {"code": "400", "message": "only an inbound call can be answered"}
        self._stop_timer(call)
        self._move(call, CallState.ANSWERED, now)
        self._arm_answered(call, now)
        return {"code": _OK, "message": "Answered"}

    def _cmd_play(self, call: Leg, params: JSONObject, now: float) -> JSONObject:
        control_id = validate.non_empty_str("control_id", params.get("control_id"))
        seconds = self.play_seconds(params.get("play"))
        if "volume" in params:
            validate.volume("volume", params["volume"])
        loop = validate.non_negative_int("loop", params.get("loop", 1))
        if call.state is not CallState.ANSWERED:  # still there: never a gone-call code
            return dict(_NOT_ANSWERED)
        if control_id in call.plays:
            return {"code": "409", "message": f"control_id {control_id!r} is already playing"}
        play = Play(call, control_id, seconds * loop if loop else math.inf, now)
        call.plays[control_id] = play
        self._emit_play(play, now)
        self._arm_play(play, now)
        return {"code": _OK, "message": "Playing"}

    def play_seconds(self, media: object) -> float:
        """How long a ``play`` list lasts; ``LocalProtocolError`` when it breaks a rule."""
        if type(media) is not list or not media:
            raise LocalProtocolError("calling.play needs a non-empty play list")
        return sum(self._media_seconds(f"play[{i}]", item) for i, item in enumerate(media))

    def _media_seconds(self, where: str, item: object) -> float:
        """How long one media item plays (the scenario's rules); only known types play."""
        kind, params = validate.check_media(where, item)  # the required keys are there
        if kind not in _PLAYABLE:
            raise LocalProtocolError(f"unsupported play type {kind!r}")
        scenario = self.scenario
        if kind == "tts":
            text = params["text"]
            return max(len(text) * scenario.play_seconds_per_char, scenario.min_play_seconds)
        duration = params.get("duration")
        return scenario.play_default_seconds if duration is None else float(duration)

    def _stop_timer(self, holder: Leg | Play) -> None:
        """Cancel the one pending timer of a leg or a play, if any."""
        if holder.timer is not None:
            self._timers.cancel(holder.timer)
            holder.timer = None

    def _arm_play(self, play: Play, now: float) -> None:
        play.started = now
        if math.isfinite(play.remaining):
            play.timer = self._timers.schedule(now + play.remaining, partial(self._play_done, play))

    def _play_done(self, play: Play, when: float) -> None:
        play.timer = None
        self._finish_play(play, PlayState.FINISHED, when)

    def _finish_play(self, play: Play, state: PlayState, now: float) -> None:
        self._stop_timer(play)
        del play.call.plays[play.control_id]
        play.state = state
        self._emit_play(play, now)

    def _find_play(self, call: Leg, params: JSONObject) -> Play | None:
        return call.plays.get(validate.non_empty_str("control_id", params.get("control_id")))

    def _cmd_play_stop(self, call: Leg, params: JSONObject, now: float) -> JSONObject:
        play = self._find_play(call, params)
        if play is None:
            return {"code": "404", "message": "Play not found"}
        self._finish_play(play, PlayState.FINISHED, now)
        return {"code": _OK, "message": "Stopped"}

    def _cmd_play_pause(self, call: Leg, params: JSONObject, now: float) -> JSONObject:
        play = self._find_play(call, params)
        if play is None:
            return {"code": "404", "message": "Play not found"}
        if play.state is PlayState.PLAYING:
            self._stop_timer(play)
            play.remaining -= now - play.started
            play.state = PlayState.PAUSED
            self._emit_play(play, now)
        return {"code": _OK, "message": "Paused"}

    def _cmd_play_resume(self, call: Leg, params: JSONObject, now: float) -> JSONObject:
        play = self._find_play(call, params)
        if play is None:
            return {"code": "404", "message": "Play not found"}
        if play.state is PlayState.PAUSED:
            play.state = PlayState.PLAYING
            self._emit_play(play, now)
            self._arm_play(play, now)
        return {"code": _OK, "message": "Resumed"}

    def _cmd_play_volume(self, call: Leg, params: JSONObject, now: float) -> JSONObject:
        play = self._find_play(call, params)
        if play is None:
            return {"code": "404", "message": "Play not found"}
        if "volume" not in params:
            raise LocalProtocolError("calling.play.volume needs a volume")
        validate.volume("volume", params["volume"])
        return {"code": _OK, "message": "Volume set"}

    # ---- emission --------------------------------------------------------------------

    def _register(self, call: Leg) -> None:
        self._live[call.call_id] = call
        self._history.append(call)

    def _move(self, call: Leg, state: CallState, now: float, reason: str | None = None) -> None:
        if state not in _TRANSITIONS[call.state]:  # pragma: no cover - guarded by callers
            raise AssertionError(f"illegal transition {call.state} -> {state}")
        call.state = state
        if reason is not None:
            call.end_reason = reason
        self._publish(call, now)

    def _publish(self, call: Leg, now: float, event_type: str = "calling.call.state") -> None:
        params = wire.leg_state_params(
            call.json, _STATE_JSON[call.state.rank], call.end_reason, call.context
        )
        call.sink.emit(event_type, params, now)

    def _emit_dial(
        self,
        dial: Dial,
        state: str,
        now: float,
        winner: Leg | None = None,
        failure: tuple[str, str] | None = None,
    ) -> None:
        call = winner.winner_params() if winner is not None else None
        params = wire.dial_params(dial.tag, dial.node_id, state, call, failure)
        dial.sink.emit("calling.call.dial", params, now)

    def _next_node(self) -> str:
        if self.node_id is not None:
            return self.node_id
        self._node_turn = turn = (self._node_turn + 1) % len(_NODES)
        return _NODES[turn]

    def _emit_play(self, play: Play, now: float) -> None:
        call = play.call
        params = {
            "call_id": call.call_id,
            "node_id": call.node_id,
            "control_id": play.control_id,
            "state": play.state.value,
            "segment_id": call.segment_id,
        }
        call.sink.emit("calling.call.play", wire.dumps(params), now)


_Command = Callable[[Switch, Leg, JSONObject, float], JSONObject]
_COMMANDS: dict[str, _Command] = {
    "calling.end": Switch._cmd_end,
    "calling.answer": Switch._cmd_answer,
    "calling.play": Switch._cmd_play,
    "calling.play.stop": Switch._cmd_play_stop,
    "calling.play.pause": Switch._cmd_play_pause,
    "calling.play.resume": Switch._cmd_play_resume,
    "calling.play.volume": Switch._cmd_play_volume,
}


def _on_actions(verb: Handler) -> _Command:
    return lambda switch, call, params, now: verb(switch.actions, call, params, now)


#: The verbs the action engine runs (``_actions`` and the verb modules).
for _table in (_media.COMMANDS, _input.COMMANDS, _plain.COMMANDS):
    _COMMANDS.update((method, _on_actions(verb)) for method, verb in _table.items())


def _destination(device: JSONObject) -> str | None:
    """The key of a device in ``Scenario.destinations``: ``to_number`` or ``to``."""
    params = device["params"]
    value = params.get("to_number") if device["type"] == "phone" else params.get("to")
    return value if isinstance(value, str) else None

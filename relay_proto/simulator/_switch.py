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
- Plays (``_plays``) and the other actions (``_actions``) of a call end before the call's
  ``ending``; nothing is left running on an ended call.
- A dial whose ``bridge`` is set rings the peer legs of a ``calling.connect``: it is not in
  ``_dials`` and resolves through ``Bridges`` (``_bridge``) instead of a dial event. A leg
  with a ``bridge`` that ends is reported to ``Bridges.leg_ended``.
- Events are handed to the owning session's sink in the order generated, stamped with the
  simulated time at which they happen (a timer's own deadline, not the time it was run).
- An inbound call not answered yet is offered to exactly one sink (``Leg.sink``): the
  session that received it, or the next one after a ``calling.pass`` (``route``, never one
  in ``_passed``); when nobody is left, an ``_Unclaimed`` sink that drops its events while
  it rings out. ``_passed`` has an entry only for a live call that was passed and is not
  answered.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection
from functools import partial

from .. import _validate as validate
from .. import _wire as wire
from .._errors import LocalProtocolError
from .._events import CallState
from .._ids import IdFactory
from .._timers import TimerQueue
from .._wire import JSONObject
from . import _input, _media, _plain
from ._actions import Actions, Handler
from ._bridge import Bridges
from ._legs import Dial, EventSink, Leg, LiveAction, LiveCall, RpcError, TimerCallback
from ._messaging import Messages
from ._plays import Plays
from ._scenario import OutcomeKind, Scenario
from ._script import CallScript

__all__ = ["Switch"]

_OK = "200"
_NOT_FOUND: JSONObject = {"code": "404", "message": "Call not found"}
#: A verb on a call that exists but is not answered yet (see docs/simulator.md, Fidelity).
_NOT_ANSWERED: JSONObject = {"code": "409", "message": "Call is not answered"}
#: An answer or pass of an inbound call offered to another session (or passed by all).
_NOT_OFFERED: JSONObject = {"code": "409", "message": "Call is offered to another session"}
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
#: The nodes calls are spread over when no ``node_id`` is fixed (a real space has many).
_NODES = tuple(f"sim-node-{n}@local" for n in range(1, 5))
#: Each call state as JSON text, by ``rank`` (encoded once, not per event).
_STATE_JSON = tuple(wire.encode_string(s.value) for s in sorted(CallState, key=lambda s: s.rank))

#: Who is offered an inbound call on a context next, never one of the sinks given.
Router = Callable[[str, Collection[object]], EventSink | None]


class _Unclaimed:
    """The owner of an inbound call every session passed: its events reach nobody."""

    __slots__ = ("project", "protocol")

    def __init__(self, project: str) -> None:
        self.project = project
        self.protocol = ""

    def emit(self, event_type: str, params_json: str, timestamp: float) -> None:
        return None


class Switch:
    """Calls, dials and plays of every session; driven by commands and by timers."""

    def __init__(
        self,
        *,
        scenario: Scenario,
        timers: TimerQueue[TimerCallback],
        new_id: IdFactory,
        route: Router,
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
        #: The sinks that passed each inbound call not answered yet.
        self._passed: dict[str, set[object]] = {}
        #: Who a passed call goes to next (the sessions' round-robin).
        self._route = route
        #: Every running play.
        self.plays = Plays(scenario=lambda: self.scenario, timers=timers)
        self.bridges = Bridges(
            start_group=self._start_group,
            end=self._end,
            media_seconds=self.plays.media_seconds,
            new_id=new_id,
        )
        self.messages = Messages(host=self, timers=timers, new_id=new_id, max_history=max_history)
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
            if method == "messaging.send":
                return self.messages.send(sink, params, now)
            raise RpcError(-32601, f"Method not found: {method}")
        node_id, call_id = params.get("node_id"), params.get("call_id")
        if not isinstance(node_id, str) or not isinstance(call_id, str):
            raise LocalProtocolError(f"{method} needs string node_id and call_id")
        call = self._live.get(call_id)
        if call is None or call.node_id != node_id or call.sink.project != sink.project:
            return dict(_NOT_FOUND)
        if (
            method in _OFFERED_ONLY
            and call.sink is not sink
            and call.state is CallState.CREATED
            and call.direction == "inbound"
        ):  # an inbound call offered to another session (or to nobody): not this one's
            return dict(_NOT_OFFERED)
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

    def _cmd_pass(self, call: Leg, params: JSONObject, now: float) -> JSONObject:
        """Offer an inbound call not answered yet to another session (``route``); with
        nobody left it rings on, unseen, until its ring timeout (see docs/simulator.md)."""
        if call.direction != "inbound":
            return {"code": "400", "message": "only an inbound call can be passed"}
        if call.state is not CallState.CREATED:
            return {"code": "409", "message": "Call is already answered"}
        passer = call.sink
        passed = self._passed.setdefault(call.call_id, set())
        passed.add(passer)
        target = self._route(call.context or "", passed)
        if target is None:
            call.sink = _Unclaimed(passer.project)
        else:
            call.sink = target
            self._publish(call, now, "calling.call.receive")
        return {"code": _OK, "message": "Passing call"}

    def drop_session(self, sink: EventSink) -> None:
        """The session expired: end its calls and dials silently (nobody is listening)."""
        for call in [c for c in self._live.values() if c.sink is sink]:
            self._passed.pop(call.call_id, None)
            self._stop_timer(call)
            self.plays.drop(call)
            self.actions.drop(call)
            call.end_reason = "hangup" if call.state is CallState.ANSWERED else "cancel"
            call.state = CallState.ENDED
            call.dial = None
            call.bridge = None
            del self._live[call.call_id]
        for key in [k for k in self._dials if k[0] == sink.protocol]:
            del self._dials[key]
        self.messages.drop_session(sink)

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
        bridge = dial.bridge
        first = bridge is None and self.scenario.faults.dial_event_first
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
        if bridge is not None:
            self.bridges.answered(bridge, call, when)
        else:
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
        if call.plays:
            self.plays.call_ended(call, now)
        if call.actions:
            self.actions.call_ended(call, now)
        if ending:
            self._move(call, CallState.ENDING, now, reason)
        self._move(call, CallState.ENDED, now, reason)
        del self._live[call.call_id]
        if self._passed:
            self._passed.pop(call.call_id, None)
        if call.bridge is not None:
            self.bridges.leg_ended(call, now)
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
        elif dial.bridge is not None:
            self.bridges.failed(dial.bridge, reason, source, now)
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
        self._passed.pop(call.call_id, None)
        self._move(call, CallState.ANSWERED, now)
        self._arm_answered(call, now)
        return {"code": _OK, "message": "Answered"}

    def play_seconds(self, media: object) -> float:
        """How long a ``play`` list lasts (``LocalProtocolError`` when it breaks a rule)."""
        return self.plays.play_seconds(media)

    def _stop_timer(self, holder: Leg) -> None:
        """Cancel the one pending timer of a leg, if any."""
        if holder.timer is not None:
            self._timers.cancel(holder.timer)
            holder.timer = None

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
        peer = call.peer_json
        if peer is not None:  # bridged (``_bridge``): the partner leg
            params = f"{params[:-1]}{peer}}}"
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


_Command = Callable[[Switch, Leg, JSONObject, float], JSONObject]
_COMMANDS: dict[str, _Command] = {
    "calling.end": Switch._cmd_end,
    "calling.answer": Switch._cmd_answer,
    "calling.pass": Switch._cmd_pass,
    "calling.play": lambda sw, call, params, now: sw.plays.start(call, params, now),
    "calling.play.stop": lambda sw, call, params, now: sw.plays.stop(call, params, now),
    "calling.play.pause": lambda sw, call, params, now: sw.plays.pause(call, params, now),
    "calling.play.resume": lambda sw, call, params, now: sw.plays.resume(call, params, now),
    "calling.play.volume": lambda sw, call, params, now: sw.plays.volume(call, params, now),
    "calling.connect": lambda sw, call, params, now: sw.bridges.connect(call, params, now),
    "calling.disconnect": lambda sw, call, params, now: sw.bridges.disconnect(call, params, now),
}

#: What only the session an inbound call is offered to may do while it is not answered.
_OFFERED_ONLY = frozenset({"calling.answer", "calling.pass"})


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

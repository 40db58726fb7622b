"""Dial, call and play tracking for the client core.

``CallTracker`` owns every dial record (by tag), every live call (by call_id) and every
running play (by control_id), plus the timers that belong to them (dial deadlines, tag
tombstones, ``max_duration``). It never writes frames itself: hang-ups go through the
``hang_up`` callable the session hands it (which queues an internal ``calling.end`` and
returns its request id), and a dial abandoned before it was sent is withdrawn through
``withdraw``. Time comes in as ``now``; the tracker never reads a clock.

Invariants:

* A dial resolves exactly once: ``DialAnswered``, ``DialFailed`` or ``DialTimedOut``, or it
  is abandoned by ``cancel_dial()``. Its record then stays as a tombstone for ``grace``
  seconds. Under a failed, timed-out, refused or abandoned dial every live leg (winner
  included) is ended on sight; under an answered dial, a loser that answers too is (the
  server cancels ringing losers itself). ``cancel`` before answer, ``hangup`` after, one
  ``calling.end`` per leg. Every leg seen under a tag is reported as it moves
  (``CallStateChanged``, for progress displays), but only ``DialAnswered`` hands a call
  over: a leg of a resolved dial is never a call of the session.
* Call and play states only move forward; duplicates and backward moves produce nothing.
* A call leaves ``calls`` when it reaches ``ended``, is lost, or its dial is abandoned; its
  plays leave with it, and its id is remembered (bounded) so a late duplicate
  ``calling.call.receive`` cannot bring it back.
* Nothing is mutated before an inbound event has been fully validated, so an event that
  raises ``RemoteProtocolError`` leaves the tracker as it was.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ._dials import DialRecord, DialStatus, LegRecord, end_reason_for
from ._errors import RemoteProtocolError
from ._events import (
    CallInfo,
    CallLost,
    CallState,
    CallStateChanged,
    DialAnswered,
    DialFailed,
    DialFailureCause,
    DialTimedOut,
    Event,
    InboundCall,
    MaxDurationReached,
    PlayState,
    PlayStateChanged,
)

JSONObject = dict[str, Any]

_FINISHED_LIMIT = 4096
_new_tuple = tuple.__new__
_ENDING = CallState.ENDING.rank

#: ``hang_up(node_id, call_id, reason)`` queues an internal ``calling.end``; returns its id.
HangUp = Callable[[str, str, str], str]
#: ``handler(inner_params, timestamp, now, events)`` for one inbound event type.
EventHandler = Callable[[JSONObject, float | None, float, list[Event]], None]


@dataclass(slots=True)
class TrackedCall:
    call_id: str
    node_id: str
    tag: str | None
    device: JSONObject
    direction: str
    state: CallState
    context: str | None
    raw: JSONObject
    max_duration_at: float | None = None

    def info(self) -> CallInfo:
        return CallInfo(
            call_id=self.call_id,
            node_id=self.node_id,
            tag=self.tag,
            device=self.device,
            direction=self.direction,
            state=self.state,
            context=self.context,
            raw=self.raw,
        )


class _Timer(NamedTuple):
    """A heap entry. A tuple, so the heap compares in C (``seq`` is unique: ties stop there)."""

    when: float
    seq: int
    kind: str
    key: str


def str_field(params: Mapping[str, Any], name: str, where: str) -> str:
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise RemoteProtocolError(f"{where}: missing or invalid {name!r}")
    return value


def _malformed(params: Mapping[str, Any], where: str, names: tuple[str, ...]) -> Exception:
    """The error for the first of ``names`` that is not a non-empty string."""
    for name in names[:-1]:
        value = params.get(name)
        if not isinstance(value, str) or not value:
            break
    else:
        name = names[-1]
    return RemoteProtocolError(f"{where}: missing or invalid {name!r}")


def _opt_str(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    return value if isinstance(value, str) else None


def _device_of(params: Mapping[str, Any]) -> JSONObject:
    device = params.get("device")
    return device if isinstance(device, dict) else {}


_CALL_STATES = {state.value: state for state in CallState}


def _call_state(where: str, raw_state: str) -> CallState:
    state = _CALL_STATES.get(raw_state)
    if state is None:
        raise RemoteProtocolError(f"{where}: unknown call_state {raw_state!r}")
    return state


class CallTracker:
    """Dials, calls and plays of one client session. See the module docstring."""

    def __init__(self, *, grace: float, hang_up: HangUp, withdraw: Callable[[str], None]) -> None:
        self._grace = grace
        self._hang_up = hang_up
        self._withdraw = withdraw
        self.dials: dict[str, DialRecord] = {}
        self.calls: dict[str, TrackedCall] = {}
        self._plays: dict[str, tuple[str, PlayState | None]] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._timers: list[_Timer] = []
        self._timer_seq = 0
        #: The calling events this tracker handles, by ``event_type`` (one dict lookup
        #: instead of a chain of comparisons on every event).
        self.handlers: dict[str, EventHandler] = {
            "calling.call.state": self._on_call_state,
            "calling.call.dial": self._on_dial_event,
            "calling.call.play": self._on_play_event,
            "calling.call.receive": self._on_receive,
        }

    def pending_tags(self) -> frozenset[str]:
        return frozenset(t for t, d in self.dials.items() if d.status is DialStatus.PENDING)

    # ------------------------------------------------------------------ commands

    def add_dial(
        self, tag: str, request_id: str, deadline: float, max_duration: int | None, sent: bool
    ) -> None:
        self.dials[tag] = DialRecord(tag, request_id, deadline, max_duration, sent=sent)
        self._schedule(deadline, "dial", tag)

    def mark_sent(self, tag: str) -> None:
        record = self.dials.get(tag)
        if record is not None:
            record.sent = True

    def cancel_dial(self, tag: str, now: float) -> bool:
        record = self.dials.get(tag)
        if record is None or record.status is DialStatus.DEAD:
            return False
        if record.status is DialStatus.ANSWERED:
            assert record.winner is not None
            call = self.calls.get(record.winner)
            if call is None or call.state.rank >= _ENDING:
                return False
        self._kill(record, now)
        return True

    def add_play(self, control_id: str, call_id: str) -> None:
        self._plays[control_id] = (call_id, None)

    def drop_play(self, control_id: str) -> None:
        self._plays.pop(control_id, None)

    # ------------------------------------------------------------------ outcomes of requests

    def dial_refused(self, tag: str, code: int, message: str, now: float) -> list[Event]:
        record = self.dials.get(tag)
        if record is None or record.status is not DialStatus.PENDING:
            return []
        self._kill(record, now)
        return [
            DialFailed(
                tag=tag,
                cause=DialFailureCause.REFUSED,
                code=code,
                message=message,
                reason=None,
                source=None,
                legs=record.legs_snapshot(),
            )
        ]

    def call_gone(self, call_id: str, events: list[Event]) -> None:
        """A call command answered 404/410: forget the call if it was still tracked."""
        if call_id in self.calls:
            self._drop_call(call_id)
            events.append(CallLost(call_id=call_id, gone=True))

    def reset(self, events: list[Event]) -> None:
        """The server did not keep the session: fail every dial that reached it, lose calls.

        Dials that were never sent stay pending: they will go out on the new session.
        Every leg and call that may still be up is hung up all the same (call commands
        name the call, not the session), so a lost session never leaves a call behind
        that the client knew of.
        """
        ended: set[str] = set()
        for tag, record in list(self.dials.items()):
            if record.status is DialStatus.PENDING and not record.sent:
                continue
            del self.dials[tag]
            for leg in record.legs.values():
                if not leg.end_sent and leg.state.rank < _ENDING:
                    self._end(leg)
                    ended.add(leg.call_id)
            if record.status is DialStatus.PENDING:
                events.append(
                    DialFailed(
                        tag=tag,
                        cause=DialFailureCause.CONNECTION_LOST,
                        code=None,
                        message="the session was lost and the server did not restore it",
                        reason=None,
                        source=None,
                        legs=record.legs_snapshot(),
                    )
                )
        for call_id, call in list(self.calls.items()):
            if call_id not in ended:
                self._hang_up(call.node_id, call_id, "hangup")
            self._drop_call(call_id)
            events.append(CallLost(call_id=call_id))

    # ------------------------------------------------------------------ inbound events

    def _on_call_state(
        self, inner: JSONObject, timestamp: float | None, now: float, events: list[Event]
    ) -> None:
        # The hottest path of the client: plain type checks first, precise errors after.
        call_id = inner.get("call_id")
        node_id = inner.get("node_id")
        raw_state = inner.get("call_state")
        if not (
            type(call_id) is str
            and call_id
            and type(node_id) is str
            and node_id
            and type(raw_state) is str
        ):
            raise _malformed(inner, "calling.call.state", ("call_id", "node_id", "call_state"))
        state = _CALL_STATES.get(raw_state)
        if state is None:
            raise RemoteProtocolError(f"calling.call.state: unknown call_state {raw_state!r}")
        tag = inner.get("tag")
        if type(tag) is not str:
            tag = None
        end_reason = inner.get("end_reason")
        if type(end_reason) is not str:
            end_reason = None
        previous: CallState | None = None
        moved = False
        record = None if tag is None else self.dials.get(tag)
        if record is not None:
            leg = record.legs.get(call_id)
            if leg is None:
                leg = record.legs[call_id] = LegRecord(call_id, node_id, _device_of(inner), state)
                moved = True
            elif state.rank > leg.state.rank:
                previous, leg.state, moved = leg.state, state, True
            if moved and end_reason is not None:
                leg.end_reason = end_reason
            # No leg of a pending dial needs ending: skip the call while it rings.
            if record.status is not DialStatus.PENDING and record.needs_end(leg):
                self._end(leg)
        call = self.calls.get(call_id)
        if call is not None:
            moved = state.rank > call.state.rank
            if moved:
                previous, call.state = call.state, state
                if state is CallState.ENDED:
                    self._drop_call(call_id)
        elif record is None:
            return  # a call this session does not know: acknowledged and ignored
        if moved:
            events.append(
                CallStateChanged(
                    call_id=call_id,
                    node_id=node_id,
                    tag=tag,
                    state=state,
                    previous=previous,
                    end_reason=end_reason,
                    timestamp=timestamp,
                    raw=inner,
                )
            )

    def _on_dial_event(
        self, inner: JSONObject, timestamp: float | None, now: float, events: list[Event]
    ) -> None:
        where = "calling.call.dial"
        tag = inner.get("tag")
        dial_state = inner.get("dial_state")
        if not (type(tag) is str and tag and type(dial_state) is str and dial_state):
            raise _malformed(inner, where, ("tag", "dial_state"))  # plain checks first, as above
        if dial_state not in ("dialing", "answered", "failed"):
            raise RemoteProtocolError(f"{where}: unknown dial_state {dial_state!r}")
        winner: tuple[str, str, JSONObject] | None = None
        if dial_state == "answered":
            call_obj = inner.get("call")
            if not isinstance(call_obj, dict):
                raise RemoteProtocolError(f"{where}: answered without a call object")
            winner = (
                str_field(call_obj, "call_id", where),
                str_field(call_obj, "node_id", where),
                call_obj,
            )
        record = self.dials.get(tag)
        if record is None or dial_state == "dialing":
            return
        if winner is not None:
            self._on_dial_answered(record, *winner, now, events)
        elif record.status is DialStatus.PENDING:
            self._kill(record, now)
            events.append(
                DialFailed(
                    tag=tag,
                    cause=DialFailureCause.FAILED,
                    code=None,
                    message="every device failed",
                    reason=_opt_str(inner, "reason"),
                    source=_opt_str(inner, "source"),
                    legs=record.legs_snapshot(),
                )
            )

    def _on_dial_answered(
        self,
        record: DialRecord,
        call_id: str,
        node_id: str,
        call_obj: JSONObject,
        now: float,
        events: list[Event],
    ) -> None:
        leg = record.legs.get(call_id)
        previous: CallState | None = None
        forced = True
        if leg is None:
            leg = LegRecord(call_id, node_id, _device_of(call_obj), CallState.ANSWERED)
            record.legs[call_id] = leg
        elif leg.state.rank < CallState.ANSWERED.rank:
            previous, leg.state = leg.state, CallState.ANSWERED
        else:
            forced = False  # its own ``answered`` state event came first
        if record.status is not DialStatus.PENDING:
            # A winner for a dial nobody waits for any more, or a second winner: end it.
            if record.needs_end(leg):
                self._end(leg)
            return
        if forced:
            # The dial event came before the winner's own ``answered`` state event.
            events.append(
                CallStateChanged(
                    call_id=call_id,
                    node_id=node_id,
                    tag=record.tag,
                    state=CallState.ANSWERED,
                    previous=previous,
                    end_reason=None,
                    timestamp=None,
                    raw=call_obj,
                )
            )
        record.status = DialStatus.ANSWERED
        record.winner = call_id
        self._retire(record, now)
        device = _device_of(call_obj) or leg.device
        call = TrackedCall(
            call_id, node_id, record.tag, device, "outbound", leg.state, None, call_obj
        )
        if leg.state is not CallState.ENDED:
            self.calls[call_id] = call
            if record.max_duration is not None:
                call.max_duration_at = now + record.max_duration
                self._schedule(call.max_duration_at, "max_duration", call_id)
        events.append(DialAnswered(tag=record.tag, call=call.info(), legs=record.legs_snapshot()))
        for other in record.legs.values():
            if record.needs_end(other):
                self._end(other)

    def _on_play_event(
        self, inner: JSONObject, timestamp: float | None, now: float, events: list[Event]
    ) -> None:
        where = "calling.call.play"
        control_id = str_field(inner, "control_id", where)
        raw_state = str_field(inner, "state", where)
        try:
            state = PlayState(raw_state)
        except ValueError:
            raise RemoteProtocolError(f"{where}: unknown state {raw_state!r}") from None
        entry = self._plays.get(control_id)
        if entry is None:
            return
        call_id, current = entry
        if state is current:
            return
        if state.terminal:
            del self._plays[control_id]
        else:
            self._plays[control_id] = (call_id, state)
        events.append(
            PlayStateChanged(call_id=call_id, control_id=control_id, state=state, raw=inner)
        )

    def _on_receive(
        self, inner: JSONObject, timestamp: float | None, now: float, events: list[Event]
    ) -> None:
        where = "calling.call.receive"
        call_id = str_field(inner, "call_id", where)
        node_id = str_field(inner, "node_id", where)
        raw_state = inner.get("call_state")
        state = _call_state(where, raw_state) if isinstance(raw_state, str) else CallState.CREATED
        if call_id in self.calls or call_id in self._finished:
            return  # a duplicate delivery
        if state.rank >= _ENDING:
            self._remember_finished(call_id)
            return
        call = TrackedCall(
            call_id,
            node_id,
            _opt_str(inner, "tag"),
            _device_of(inner),
            "inbound",
            state,
            _opt_str(inner, "context"),
            inner,
        )
        self.calls[call_id] = call
        events.append(InboundCall(call=call.info()))

    # ------------------------------------------------------------------ timers

    def next_deadline(self) -> float | None:
        while self._timers and not self._timer_valid(self._timers[0]):
            heapq.heappop(self._timers)
        return self._timers[0].when if self._timers else None

    def handle_timer(self, now: float, events: list[Event]) -> None:
        while self._timers and self._timers[0].when <= now:
            timer = heapq.heappop(self._timers)
            if self._timer_valid(timer):
                self._fire(timer, now, events)

    def _schedule(self, when: float, kind: str, key: str) -> None:
        self._timer_seq += 1
        timers = self._timers
        # tuple.__new__ directly: NamedTuple's own __new__ is a Python-level wrapper.
        heapq.heappush(timers, _new_tuple(_Timer, (when, self._timer_seq, kind, key)))
        # Timers are cancelled lazily (a dial answered long before its deadline leaves its
        # deadline behind). Compact when stale entries outnumber the live records, so the
        # heap stays proportional to what is tracked: amortised O(1) per timer.
        if len(timers) > 64 + 4 * (len(self.dials) + len(self.calls)):
            self._timers = [timer for timer in timers if self._timer_valid(timer)]
            heapq.heapify(self._timers)

    def _timer_valid(self, timer: _Timer) -> bool:
        if timer.kind == "dial":
            record = self.dials.get(timer.key)
            return (
                record is not None
                and record.status is DialStatus.PENDING
                and record.deadline == timer.when
            )
        if timer.kind == "tombstone":
            record = self.dials.get(timer.key)
            return record is not None and record.expires == timer.when
        call = self.calls.get(timer.key)
        return call is not None and call.max_duration_at == timer.when

    def _fire(self, timer: _Timer, now: float, events: list[Event]) -> None:
        if timer.kind == "dial":
            record = self.dials[timer.key]
            self._kill(record, now)
            events.append(DialTimedOut(tag=record.tag, legs=record.legs_snapshot()))
        elif timer.kind == "tombstone":
            del self.dials[timer.key]
        else:
            call = self.calls[timer.key]
            call.max_duration_at = None
            request_id = self._hang_up(call.node_id, call.call_id, "hangup")
            events.append(MaxDurationReached(call_id=call.call_id, request_id=request_id))

    # ------------------------------------------------------------------ internals

    def _end(self, leg: LegRecord) -> None:
        leg.end_sent = True
        self._hang_up(leg.node_id, leg.call_id, end_reason_for(leg))

    def _retire(self, record: DialRecord, now: float) -> None:
        """Start the grace period after which the tag is forgotten."""
        record.expires = now + self._grace
        self._schedule(record.expires, "tombstone", record.tag)

    def _kill(self, record: DialRecord, now: float) -> None:
        """Make a dial dead: end every live leg (winner included) and tombstone the tag."""
        record.status = DialStatus.DEAD
        if record.winner is not None and record.winner in self.calls:
            self._drop_call(record.winner)
        self._retire(record, now)
        if not record.sent:
            self._withdraw(record.request_id)
        for leg in record.legs.values():
            if record.needs_end(leg):
                self._end(leg)

    def _drop_call(self, call_id: str) -> None:
        del self.calls[call_id]
        if self._plays:  # usually empty: skip building the list
            for control_id in [c for c, (cid, _) in self._plays.items() if cid == call_id]:
                del self._plays[control_id]
        self._remember_finished(call_id)

    def _remember_finished(self, call_id: str) -> None:
        self._finished[call_id] = None
        if len(self._finished) > _FINISHED_LIMIT:
            self._finished.popitem(last=False)

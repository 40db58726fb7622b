"""Dial, leg, call and play tracking for the client core.

``CallTracker`` owns every dial record (by tag), every live call (by call_id), every
running play (by control_id), and the timers that belong to them (dial deadlines, tag
tombstones, ``max_duration``) in one ``TimerQueue``. It never writes frames and never calls
back into the session: every method appends what happened to ``events`` and what must be
done to ``intents`` (``EndLeg``, ``Withdraw``), which the connection turns into frames.
Time comes in as ``now``; the tracker never reads a clock.

Invariants:

* A dial resolves exactly once: ``DialAnswered``, ``DialFailed`` or ``DialTimedOut``, or it
  is abandoned by ``cancel_dial()``. Its record then stays as a tombstone for ``grace``
  seconds. Whether a leg must be ended, and how, is decided by ``_state.end_reason`` alone
  (one ``calling.end`` per leg). Every leg seen under a tag is reported as it moves
  (``CallStateChanged``), but only ``DialAnswered`` hands a call over: a leg of a resolved
  dial is never a call of the session.
* Dial statuses, call and play states move only as the tables of ``_state`` allow;
  duplicates and backward moves produce nothing.
* A call leaves ``calls`` when it reaches ``ended``, is lost, is passed (``release``), or
  its dial is abandoned; its
  plays and timer leave with it, and its id is remembered (bounded) so a late duplicate
  ``calling.call.receive`` cannot bring it back.
* Every timer in the queue belongs to a live record: timers are cancelled when what they
  belong to resolves or goes.
* Nothing is mutated before an inbound event has been fully validated, so an event that
  raises ``RemoteProtocolError`` (reported by the connection as ``UnreadableEvent``)
  leaves the tracker as it was. An unknown state value (``UnknownState``) changes nothing;
  a missing ``node_id`` is taken from the call or leg already known (docs/reading.md).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable

from ._actions import ActionTable, Verb
from ._bridges import Bridges
from ._errors import RemoteProtocolError
from ._events import (
    CallLost,
    CallState,
    DialFailureCause,
    DialTimedOut,
    Event,
    InboundCall,
    UnknownState,
)
from ._making import call_state_changed, dial_answered
from ._records import (
    CALL_STATES,
    DialRecord,
    EndLeg,
    Intent,
    LegRecord,
    TimerKey,
    TrackedCall,
    Withdraw,
    device_of,
    known_node,
    known_node_id,
    malformed,
    opt_str,
    read_call_state_slow,
    str_field,
    unknown_state,
)
from ._state import (
    DialInput,
    DialStatus,
    end_reason,
    next_dial_status,
)
from ._timers import TimerQueue
from ._wire import JSONObject

_FINISHED_LIMIT = 4096
_ENDING = CallState.ENDING
_ENDING_RANK = _ENDING.rank
_PENDING = DialStatus.PENDING
_ANSWERED_RANK = CallState.ANSWERED.rank

#: ``handler(inner_params, timestamp, now, events, intents)`` for one inbound event type.
EventHandler = Callable[[JSONObject, float | None, float, list[Event], list[Intent]], None]


class CallTracker:
    """Dials, calls and plays of one client session. See the module docstring."""

    def __init__(self, *, grace: float) -> None:
        self._grace = grace
        self.dials: dict[str, DialRecord] = {}
        self.calls: dict[str, TrackedCall] = {}
        #: The running actions (play, record, collect, ...) of the session's calls.
        self.actions = ActionTable()
        #: The connect state of each bridged call.
        self.bridges = Bridges(self.calls, self.adopt)
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._timers: TimerQueue[TimerKey] = TimerQueue()
        self._known_node_id = functools.partial(known_node_id, self.calls, self.dials)
        #: The earliest live deadline, or None (the queue's own method: asked after every
        #: batch of reads).
        self.next_deadline: Callable[[], float | None] = self._timers.next_deadline
        #: The calling events this tracker handles, by ``event_type`` (one dict lookup
        #: instead of a chain of comparisons on every event).
        self.handlers: dict[str, EventHandler] = {
            "calling.call.state": self._on_call_state,
            "calling.call.dial": self._on_dial_event,
            "calling.call.receive": self._on_receive,
            "calling.call.connect": self.bridges.on_event,
        }
        for event_type in self.actions.by_event:
            self.handlers[event_type] = self.actions.handler(event_type)

    def pending_tags(self) -> frozenset[str]:
        return frozenset(t for t, d in self.dials.items() if d.status is DialStatus.PENDING)

    # ------------------------------------------------------------------ commands

    def add_dial(
        self, tag: str, request_id: str, deadline: float, max_duration: int | None
    ) -> None:
        record = DialRecord(tag, request_id, max_duration)
        record.timer = self._timers.schedule(deadline, tag)
        self.dials[tag] = record

    def cancel_dial(self, tag: str, now: float, intents: list[Intent]) -> bool:
        record = self.dials.get(tag)
        if record is None or record.status is DialStatus.DEAD:
            return False
        if record.status is DialStatus.ANSWERED:
            assert record.winner is not None
            call = self.calls.get(record.winner)
            if call is None or call.state.rank >= _ENDING.rank:
                return False
        self._kill(record, now, intents)
        return True

    def add_action(
        self, control_id: str, call_id: str, verb: Verb, start_id: str, continuous: bool
    ) -> None:
        self.actions.add(control_id, call_id, verb, start_id, continuous)
        if verb.event_type not in self.handlers:  # a verb this client has no row for
            self.handlers[verb.event_type] = self.actions.handler(verb.event_type)

    def adopt(self, call: TrackedCall) -> TrackedCall | None:
        """Make ``call`` (a bridge's peer) a call of the session, unless it is known or
        has ended; return the call as tracked (None if it has ended)."""
        known = self.calls.get(call.call_id)
        if known is not None:
            return known
        if call.call_id in self._finished or call.state.rank >= _ENDING.rank:
            return None
        self.calls[call.call_id] = call
        return call

    # ------------------------------------------------------------------ outcomes of requests

    def dial_refused(
        self, tag: str, code: int, message: str, now: float, intents: list[Intent]
    ) -> list[Event]:
        record = self.dials.get(tag)
        if record is None or record.status is not DialStatus.PENDING:
            return []
        self._kill(record, now, intents)
        return [record.failed(DialFailureCause.REFUSED, message, code=code)]

    def call_gone(self, call_id: str, events: list[Event], passed: bool = False) -> None:
        """A call-level command answered 404/410 (or its ``calling.pass`` was accepted:
        ``passed``): forget the call, without a hang-up, if it was still tracked."""
        if call_id in self.calls:
            self._drop_call(call_id, events)
            events.append(CallLost(call_id=call_id, gone=not passed, passed=passed))

    def reset(self, unsent: frozenset[str], events: list[Event], intents: list[Intent]) -> None:
        """The server did not keep the session: fail every dial that reached it, lose calls.

        Dials whose tags are in ``unsent`` never reached the server: they stay pending and
        go out on the new session. Every leg and call that may still be up is ended all
        the same (call commands name the call, not the session), so a lost session never
        leaves a call behind that the client knew of.
        """
        ended: set[str] = set()
        for tag, record in list(self.dials.items()):
            if record.status is DialStatus.PENDING and tag in unsent:
                continue
            del self.dials[tag]
            assert record.timer is not None
            self._timers.cancel(record.timer)
            if self.actions.running and (winner := self._abandoned_winner(record)):
                self.actions.end_for_call(winner, events)
            pending = record.status is DialStatus.PENDING
            if record.status is not DialStatus.DEAD:
                record.status = next_dial_status(record.status, DialInput.KILL)
            self._end_legs(record, intents)
            ended.update(leg.call_id for leg in record.legs.values() if leg.end_sent)
            if pending:
                lost = "the session was lost and the server did not restore it"
                events.append(record.failed(DialFailureCause.CONNECTION_LOST, lost))
        for call_id, call in list(self.calls.items()):
            reason = end_reason(call.state, end_sent=call_id in ended, dial=None)
            if reason is not None:
                intents.append(EndLeg(call.node_id, call_id, reason))
            self._drop_call(call_id, events)
            events.append(CallLost(call_id=call_id))

    # ------------------------------------------------------------------ inbound events

    def _on_call_state(
        self,
        inner: JSONObject,
        timestamp: float | None,
        now: float,
        events: list[Event],
        intents: list[Intent],
    ) -> None:
        call_id, node_id = inner.get("call_id"), inner.get("node_id")
        raw = inner.get("call_state") if call_id and node_id else None
        state = CALL_STATES.get(raw) if type(raw) is str else None
        if state is None or not (type(call_id) is str and type(node_id) is str):  # PROTOCOL 2.6
            self._on_odd_call_state(inner, timestamp, now, events, intents)
            return
        tag = tag if type(tag := inner.get("tag")) is str else None
        end_text = end if type(end := inner.get("end_reason")) is str else None
        previous: CallState | None = None
        moved = False
        record = None if tag is None else self.dials.get(tag)
        if record is not None:
            if (leg := record.legs.get(call_id)) is None:
                leg = record.legs[call_id] = LegRecord(call_id, node_id, device_of(inner), state)
                moved = True
            elif state.rank > leg.state.rank:  # ``_state.advances``, inlined
                previous, leg.state, moved = leg.state, state, True
            if moved and end_text is not None:
                leg.end_reason = end_text
            # No call for a leg of a pending dial, nor one ending (``end_reason``'s first rule).
            if leg.state.rank < _ENDING_RANK and not leg.end_sent and record.status is not _PENDING:
                self._end_legs(record, intents, call_id)
        call = self.calls.get(call_id)
        if call is not None:
            previous, moved = call.state, state.rank > call.state.rank
            if moved:
                self._move_call(call, state, events)
        elif moved and state is CallState.ENDED and self.actions.running:
            self.actions.end_for_call(call_id, events)  # the winner of an abandoned dial
        if moved:  # not for a call this session does not know: acknowledged and ignored
            events.append(  # ``CallStateChanged(...)``, made quicker (``_making``)
                call_state_changed(
                    call_id, node_id, tag, state, previous, end_text, timestamp, inner
                )
            )

    def _on_odd_call_state(
        self,
        inner: JSONObject,
        timestamp: float | None,
        now: float,
        events: list[Event],
        intents: list[Intent],
    ) -> None:
        """A state event the hot path could not take: report an unknown state, or read it
        again with the ``node_id`` the client knows filled in (``raw`` shows it so)."""
        checked = read_call_state_slow(inner, self._known_node_id)
        if isinstance(checked, UnknownState):
            events.append(checked)
        else:
            fixed = {**inner, "node_id": checked[1]}
            self._on_call_state(fixed, timestamp, now, events, intents)

    def _move_call(self, call: TrackedCall, state: CallState, events: list[Event]) -> None:
        """Move a call of the session forward (``state`` advances it)."""
        call.state = state
        if state.rank >= _ENDING_RANK and call.max_duration is not None:
            self._stop_max_duration(call)
        if state is CallState.ENDED:
            self._drop_call(call.call_id, events)

    def _on_dial_event(
        self,
        inner: JSONObject,
        timestamp: float | None,
        now: float,
        events: list[Event],
        intents: list[Intent],
    ) -> None:
        where = "calling.call.dial"
        tag = inner.get("tag")
        dial_state = inner.get("dial_state")
        if not (type(tag) is str and tag and type(dial_state) is str and dial_state):
            raise malformed(inner, where, ("tag", "dial_state"))  # plain checks first, as above
        if dial_state not in ("dialing", "answered", "failed"):
            events.append(unknown_state(where, "dial_state", dial_state, inner))
            return  # the dial keeps waiting (its deadline still holds)
        winner: tuple[str, str, JSONObject] | None = None
        if dial_state == "answered":
            call_obj = inner.get("call")
            if not isinstance(call_obj, dict):
                raise RemoteProtocolError(f"{where}: answered without a call object")
            call_id = str_field(call_obj, "call_id", where)
            node_id = known_node(call_obj.get("node_id"), call_id, tag, self._known_node_id, where)
            winner = (call_id, node_id, call_obj)
        record = self.dials.get(tag)
        if record is None or dial_state == "dialing":
            return
        if winner is not None:
            self._on_dial_answered(record, *winner, now, events, intents)
        elif record.status is DialStatus.PENDING:
            self._kill(record, now, intents)
            reason, source = opt_str(inner, "reason"), opt_str(inner, "source")
            failed = record.failed(
                DialFailureCause.FAILED, "every device failed", reason=reason, source=source
            )
            events.append(failed)

    def _on_dial_answered(
        self,
        record: DialRecord,
        call_id: str,
        node_id: str,
        call_obj: JSONObject,
        now: float,
        events: list[Event],
        intents: list[Intent],
    ) -> None:
        leg = record.legs.get(call_id)
        previous: CallState | None = None
        forced = True
        if leg is None:
            leg = LegRecord(call_id, node_id, device_of(call_obj), CallState.ANSWERED)
            record.legs[call_id] = leg
        elif leg.state.rank < _ANSWERED_RANK:  # ``_state.advances``, inlined
            previous, leg.state = leg.state, CallState.ANSWERED
        else:
            forced = False  # its own ``answered`` state event came first
        if record.status is not DialStatus.PENDING:
            # A winner for a dial nobody waits for any more, or a second winner: end it.
            self._end_legs(record, intents, call_id)
            return
        if forced:
            # The dial event came before the winner's own ``answered`` state event.
            events.append(
                call_state_changed(
                    call_id, node_id, record.tag, CallState.ANSWERED, previous, None, None, call_obj
                )
            )
        record.status = next_dial_status(record.status, DialInput.ANSWER)
        record.winner = call_id
        self._retire(record, now)
        call = self._hand_over(record, leg, call_obj, now)
        events.append(dial_answered(record.tag, call.info(), record.legs_snapshot()))
        if len(record.legs) > 1:  # a lone winner is never ended (``end_reason``): no call
            self._end_legs(record, intents)

    def _hand_over(
        self, record: DialRecord, leg: LegRecord, call_obj: JSONObject, now: float
    ) -> TrackedCall:
        """The winner becomes a call of the session (unless it has ended already)."""
        device = device_of(call_obj) or leg.device
        call = TrackedCall(
            leg.call_id, leg.node_id, record.tag, device, "outbound", leg.state, None, call_obj
        )
        if leg.state is not CallState.ENDED:
            self.calls[leg.call_id] = call
            # No limit for a call already ending: nothing would be left to end.
            if record.max_duration is not None and leg.state is CallState.ANSWERED:
                key = ("max_duration", leg.call_id)
                call.max_duration = self._timers.schedule(now + record.max_duration, key)
        return call

    def _on_receive(
        self,
        inner: JSONObject,
        timestamp: float | None,
        now: float,
        events: list[Event],
        intents: list[Intent],
    ) -> None:
        where = "calling.call.receive"
        call_id = str_field(inner, "call_id", where)
        node_id = str_field(inner, "node_id", where)
        raw_state = inner.get("call_state")
        state = CALL_STATES.get(raw_state) if isinstance(raw_state, str) else CallState.CREATED
        if state is None:
            assert isinstance(raw_state, str)
            events.append(unknown_state(where, "call_state", raw_state, inner))
            return  # not taken as a call: its state is not known
        if call_id in self.calls or call_id in self._finished:
            return  # a duplicate delivery
        if state.rank >= _ENDING.rank:
            self._remember_finished(call_id)
            return
        call = TrackedCall(
            call_id,
            node_id,
            opt_str(inner, "tag"),
            device_of(inner),
            "inbound",
            state,
            opt_str(inner, "context"),
            inner,
        )
        self.calls[call_id] = call
        events.append(InboundCall(call=call.info()))

    # ------------------------------------------------------------------ timers

    def handle_timer(self, now: float, events: list[Event], intents: list[Intent]) -> None:
        while (due := self._timers.pop_due(now)) is not None:
            payload = due[1]
            if isinstance(payload, str):  # a dial's deadline while pending, else its tombstone
                record = self.dials[payload]
                if record.status is DialStatus.PENDING:
                    self._kill(record, now, intents)
                    events.append(DialTimedOut(tag=record.tag, legs=record.legs_snapshot()))
                else:
                    del self.dials[payload]
                    if self.actions.running and (winner := self._abandoned_winner(record)):
                        self.actions.end_for_call(winner, events)
            else:
                key = payload[1]
                call = self.calls[key]
                call.max_duration = None
                reason = end_reason(call.state, end_sent=False, dial=None)
                assert reason is not None  # the timer is stopped when the call starts ending
                intents.append(EndLeg(call.node_id, key, reason, max_duration=True))

    # ------------------------------------------------------------------ internals

    def _end_legs(self, record: DialRecord, intents: list[Intent], only: str | None = None) -> None:
        """Apply THE rule (``_state.end_reason``) to the legs of ``record`` (or just ``only``)."""
        legs = record.legs.values() if only is None else (record.legs[only],)
        for leg in legs:
            reason = end_reason(
                leg.state,
                end_sent=leg.end_sent,
                dial=record.status,
                winner=leg.call_id == record.winner,
            )
            if reason is not None:
                leg.end_sent = True
                intents.append(EndLeg(leg.node_id, leg.call_id, reason))

    def _abandoned_winner(self, record: DialRecord) -> str | None:
        """The dial's winner if it is no call of the session (abandoned after the answer):
        its actions go with the dial's record. A live winner keeps them."""
        winner = record.winner
        return None if winner is None or winner in self.calls else winner

    def _retire(self, record: DialRecord, now: float) -> None:
        """Stop the dial's deadline and start the grace period after which the tag goes."""
        assert record.timer is not None
        self._timers.cancel(record.timer)
        record.timer = self._timers.schedule(now + self._grace, record.tag)

    def _kill(self, record: DialRecord, now: float, intents: list[Intent]) -> None:
        """Make a dial dead: end every live leg (winner included) and tombstone the tag."""
        record.status = next_dial_status(record.status, DialInput.KILL)
        if record.winner is not None and record.winner in self.calls:
            # Abandoned after the answer: its actions end with the leg (its ``ended``).
            self._drop_call(record.winner, None)
        self._retire(record, now)
        intents.append(Withdraw(record.request_id))  # a no-op once the dial has gone out
        self._end_legs(record, intents)

    def _stop_max_duration(self, call: TrackedCall) -> None:
        # Callers check ``call.max_duration`` first: it is usually None, and then no call.
        assert call.max_duration is not None
        self._timers.cancel(call.max_duration)
        call.max_duration = None

    def _drop_call(self, call_id: str, events: list[Event] | None) -> None:
        """Forget a call; its actions end now (with ``events``), or, when None, with the
        leg's own events (its ``ended``, or its dial's tombstone going)."""
        call = self.calls.pop(call_id)
        if call.max_duration is not None:
            self._stop_max_duration(call)
        if self.actions.running and events is not None:  # usually empty: skip the scan
            self.actions.end_for_call(call_id, events)
        if self.bridges.states or self.bridges.asked:
            self.bridges.forget(call_id)
        self._remember_finished(call_id)

    def _remember_finished(self, call_id: str) -> None:
        self._finished[call_id] = None
        if len(self._finished) > _FINISHED_LIMIT:
            self._finished.popitem(last=False)

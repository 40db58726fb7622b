"""A Hypothesis state machine: the client core against the server core, through ``Pair``.

Random dial plans (1-3 serial groups of 1-3 phones) with random per-destination outcomes,
random dial timeouts and max durations, interleaved with cancels, hang-ups, plays, clock
advances, socket drops, server disconnects and delivery faults. After every step:

* every dial resolves at most once, never after it was cancelled, and ``pending_dials``
  is exactly the set of dials neither resolved nor cancelled;
* an answered dial's winner was scripted to answer; a failed one had no device that could;
* call states only move forward and plays stop reporting once terminal;
* every action (record, collect, detect, send_digits, tap) reports ``done`` at most once
  (never, if its start failed),
  ``settled`` at most once and never after ``done``, and nothing after ``done``; every
  message reports ``done`` at most once;
* once settled, no action runs on the simulator on a call that has ended, nor one whose
  start the client abandoned;
* while connected, every event the simulator sent has been acked, and no reply went to an
  id it never issued (a second ack of one delivery would be one);
* once settled (connected, no delayed delivery in flight), the switch's live calls of the
  current session are exactly the client's live calls plus legs of its pending dials: no
  leg of a failed, timed-out, refused or cancelled dial is left up.

``teardown`` then runs the clock past every deadline and grace period and checks that every
dial resolved exactly once (or was cancelled), nothing is pending, no orphan of an expired
session is live, and every frame the client wrote passes the independent schema check. It
then hangs up what is left: every action not abandoned has then reported ``done`` exactly
once, and no action or message is left running on the simulator. Any exception out of the
client fails the run.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from test_pair import check_client_frames

from relay_proto import (
    ActionStateChanged,
    CallState,
    CallStateChanged,
    Connected,
    DialAnswered,
    DialFailed,
    DialFailureCause,
    DialTimedOut,
    Event,
    MessageStateChanged,
    PlayStateChanged,
    RequestFailed,
)
from relay_proto.simulator import MessageOutcome
from relay_proto.testing import Faults, Outcome, OutcomeKind, Pair, Scenario, phone

RING_TIMEOUT = 30.0
#: Valid start params of the verbs the machine runs (the far end's script is the default:
#: no input, 2 s of talk, a human, no fax).
ACTIONS: dict[str, dict[str, Any]] = {
    "record": {"record": {"audio": {"end_silence_timeout": 1}}},
    "collect": {"digits": {"max": 2}, "initial_timeout": 2},
    "detect": {"detect": {"type": "machine", "params": {}}, "timeout": 5},
    "send_digits": {"digits": "12"},
    "tap": {
        "tap": {"type": "audio"},
        "device": {"type": "ws", "params": {"uri": "wss://127.0.0.1:9/tap"}},
    },
}
RESUME_GRACE = 30.0
TOMBSTONE_GRACE = 60.0

outcomes = st.builds(
    Outcome,
    kind=st.sampled_from([OutcomeKind.ANSWER] * 3 + list(OutcomeKind)),
    after=st.sampled_from([0.0, 0.5, 1.0, 2.0, 5.0]),
    hangup_after=st.none() | st.sampled_from([1.0, 3.0, 10.0]),
)
# (outcome, device timeout or None) per device, 1-3 devices per group, 1-3 groups
plans = st.lists(
    st.lists(st.tuples(outcomes, st.none() | st.sampled_from([1, 3, 6])), min_size=1, max_size=3),
    min_size=1,
    max_size=3,
)
faults = st.builds(
    Faults,
    duplicate_events=st.booleans(),
    reorder=st.booleans(),
    dial_event_first=st.booleans(),
    events_before_result=st.booleans(),
    delay_events=st.sampled_from([0.0, 0.0, 0.5, 2.0]),
    refuse_resume=st.booleans(),
)


@dataclass
class DialModel:
    deadline: float
    #: to_number -> (outcome, ring timeout) for every device of the plan
    devices: dict[str, tuple[Outcome, float]]
    resolutions: list[Event] = field(default_factory=list)
    cancelled: bool = False

    def can_answer(self, number: str) -> bool:
        outcome, timeout = self.devices[number]
        return outcome.kind is OutcomeKind.ANSWER and outcome.after < timeout


class PairMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.pair = Pair(
            scenario=Scenario(ring_timeout=RING_TIMEOUT),
            client_kwargs={"tombstone_grace": TOMBSTONE_GRACE},
            simulator_kwargs={"resume_grace": RESUME_GRACE},
        )
        self.pair.connect()
        self.dials: dict[str, DialModel] = {}
        self.numbers = itertools.count(1)
        self.seen = 0
        self.last_connected: Connected | None = None
        self.call_states: dict[str, CallState] = {}
        self.finished_plays: set[str] = set()
        #: control_id -> [done, settled] counts of every action started through the core
        self.actions: dict[str, list[int]] = {}
        self.abandoned: set[str] = set()
        #: start request id -> control_id; the control_ids whose start failed (never ran)
        self.starts: dict[str, str] = {}
        self.refused: set[str] = set()
        self.message_done: dict[str, int] = {}
        self.delay = 0.0
        #: no delayed delivery can be in flight from this time on
        self.quiet_at = 0.0

    # ------------------------------------------------------------------ rules

    @precondition(lambda self: len(self.dials) < 6)
    @rule(
        plan=plans,
        dial_timeout=st.sampled_from([2.0, 10.0, 30.0, 30.0]),
        max_duration=st.sampled_from([None, None, 2, 5, 20]),
    )
    def dial(
        self,
        plan: list[list[tuple[Outcome, int | None]]],
        dial_timeout: float,
        max_duration: int | None,
    ) -> None:
        devices: list[list[dict[str, Any]]] = []
        model = DialModel(deadline=self.pair.now + dial_timeout, devices={})
        for group in plan:
            devices.append([])
            for outcome, timeout in group:
                number = f"+1555{next(self.numbers):07d}"
                self.pair.simulator.scenario.destinations[number] = outcome
                extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
                devices[-1].append(phone(number, **extra))
                ring = RING_TIMEOUT if timeout is None else float(timeout)
                model.devices[number] = (outcome, ring)
        tag = self.pair.client.dial(
            devices, now=self.pair.now, dial_timeout=dial_timeout, max_duration=max_duration
        )
        assert tag not in self.dials
        self.dials[tag] = model
        self.pair.pump()

    @precondition(lambda self: bool(self.dials))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        tag = data.draw(st.sampled_from(sorted(self.dials)), label="tag")
        pending = tag in self.pair.client.pending_dials
        abandoned = self.pair.client.cancel_dial(tag, now=self.pair.now)
        if pending:
            assert abandoned
            self.dials[tag].cancelled = True
        self.pair.pump()

    @precondition(lambda self: bool(self.pair.client.live_call_ids))
    @rule(data=st.data())
    def hang_up(self, data: st.DataObject) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.pair.client.live_call_ids)))
        self.pair.client.end(call_id)
        self.pair.pump()

    @precondition(lambda self: bool(self.pair.client.live_call_ids))
    @rule(data=st.data(), seconds=st.sampled_from([0.5, 2, 30]))
    def play(self, data: st.DataObject, seconds: float) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.pair.client.live_call_ids)))
        media = [{"type": "silence", "duration": seconds}]
        self.pair.client.play(call_id, media)
        self.pair.pump()

    @precondition(lambda self: bool(self.pair.client.live_call_ids))
    @rule(data=st.data(), verb=st.sampled_from(sorted(ACTIONS)))
    def start_action(self, data: st.DataObject, verb: str) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.pair.client.live_call_ids)))
        request_id, control_id = self.pair.client.start_action(call_id, verb, ACTIONS[verb])
        self.actions[control_id] = [0, 0]
        self.starts[request_id] = control_id
        self.pair.pump()

    @precondition(lambda self: bool(self.actions))
    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        control_id = data.draw(st.sampled_from(sorted(self.actions)))
        self.pair.client.abandon_action(control_id)
        self.abandoned.add(control_id)
        self.pair.pump()

    @rule(state=st.sampled_from(["delivered", "undelivered", "failed"]))
    def send_message(self, state: str) -> None:
        number = f"+1555{next(self.numbers):07d}"
        outcome = Outcome(kind=OutcomeKind.ANSWER, message=MessageOutcome(state=state))
        self.pair.simulator.scenario.destinations[number] = outcome
        self.pair.client.send_message(to_number=number, from_number="+15550000001", body="hi")
        self.pair.pump()

    @rule(seconds=st.sampled_from([0.0, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 40.0]))
    def advance(self, seconds: float) -> None:
        self.pair.advance(seconds)

    @precondition(lambda self: self.pair.connected)
    @rule(how=st.sampled_from(["drop", "disconnect", "restart"]))
    def lose_the_socket(self, how: str) -> None:
        """An abrupt drop, or ``signalwire.disconnect`` (the switch closes after the reply)."""
        if how == "drop":
            self.pair.drop()
        else:
            assert self.pair.server is not None
            self.pair.server.send_disconnect(restart=how == "restart")
            self.pair.pump()
        assert not self.pair.connected

    @precondition(lambda self: not self.pair.connected)
    @rule()
    def reconnect(self) -> None:
        self.pair.connect()

    @rule(new=faults)
    def set_faults(self, new: Faults) -> None:
        if self.delay:
            self.quiet_at = max(self.quiet_at, self.pair.now + self.delay)
        self.delay = new.delay_events
        self.pair.simulator.scenario.faults = new

    # ------------------------------------------------------------------ invariants

    def _scan(self) -> None:
        """Check every client event produced since the last scan."""
        new = self.pair.events[self.seen :]
        self.seen = len(self.pair.events)
        for event in new:
            if isinstance(event, Connected):
                self.last_connected = event
            elif isinstance(event, DialAnswered | DialFailed | DialTimedOut):
                model = self.dials[event.tag]
                assert not model.cancelled, f"{event} after cancel_dial"
                model.resolutions.append(event)
                assert len(model.resolutions) == 1, model.resolutions
                self._check_resolution(model, event)
            elif isinstance(event, CallStateChanged):
                before = self.call_states.get(event.call_id)
                assert before is None or event.state.rank > before.rank, (before, event)
                assert event.previous is None or event.previous.rank < event.state.rank
                self.call_states[event.call_id] = event.state
            elif isinstance(event, PlayStateChanged) and event.verb == "play":
                assert event.control_id not in self.finished_plays, event
                if event.state.terminal:
                    self.finished_plays.add(event.control_id)
            elif isinstance(event, ActionStateChanged):
                self._check_action(event)
            elif isinstance(event, MessageStateChanged) and event.done:
                done = self.message_done.get(event.message.message_id, 0) + 1
                self.message_done[event.message.message_id] = done
                assert done == 1, event
            elif isinstance(event, RequestFailed) and event.request_id in self.starts:
                self.refused.add(self.starts[event.request_id])

    def _check_action(self, event: ActionStateChanged) -> None:
        counts = self.actions.get(event.control_id)
        if counts is None:  # a play's end with its call (``call_ended``)
            assert event.verb == "play", event
            return
        assert counts[0] == 0, f"{event} after done"
        counts[0] += event.done
        counts[1] += event.settled
        assert counts[1] <= 1, event

    def _check_resolution(self, model: DialModel, event: Event) -> None:
        if isinstance(event, DialAnswered):
            # ANSWERED, or later when the winner's end arrived before the dial's answer
            # (the adapter handles "ended in the same breath"): then it is no live call.
            assert event.call.state.rank >= CallState.ANSWERED.rank
            if event.call.state.rank >= CallState.ENDING.rank:
                assert event.call.call_id not in self.pair.client.live_call_ids
            assert model.can_answer(event.call.device["params"]["to_number"]), event
        elif isinstance(event, DialTimedOut):
            assert self.pair.now >= model.deadline
        else:
            assert isinstance(event, DialFailed)
            if event.cause is DialFailureCause.FAILED:
                assert not any(model.can_answer(n) for n in model.devices), event
            else:  # nothing refuses dials here: only a lost session fails them otherwise
                assert event.cause is DialFailureCause.CONNECTION_LOST, event
                assert self.last_connected is not None
                assert not self.last_connected.session_restored

    @invariant()
    def dials_resolve_at_most_once(self) -> None:
        self._scan()
        open_tags = {
            tag
            for tag, model in self.dials.items()
            if not model.resolutions and not model.cancelled
        }
        assert self.pair.client.pending_dials == open_tags

    @invariant()
    def every_event_acked_once(self) -> None:
        assert self.pair.protocol_errors == []
        for connection in self.pair.connections:
            assert connection.violations == []
        if self.pair.connected:
            protocol = self.pair.client.protocol
            assert protocol is not None
            assert self.pair.simulator.unacked_events(protocol) == 0

    @invariant()
    def no_leftover_calls_when_settled(self) -> None:
        if not self.pair.connected or self.delay or self.pair.now < self.quiet_at:
            return
        self._check_calls_agree()
        self._check_actions_settled()

    def _check_actions_settled(self) -> None:
        live_calls = {call.call_id for call in self.pair.simulator.live_calls()}
        for action in self.pair.simulator.live_actions():
            assert action.call_id in live_calls, action
            # send_digits has no stop: an abandoned one runs to its end.
            assert action.control_id not in self.abandoned or action.verb == "send_digits", action

    def _check_calls_agree(self) -> None:
        client = self.pair.client
        live = [c for c in self.pair.simulator.live_calls() if c.protocol == client.protocol]
        for call in live:
            assert call.call_id in client.live_call_ids or call.tag in client.pending_dials, (
                call,
                client.pending_dials,
            )
        assert client.live_call_ids <= {call.call_id for call in live}

    # ------------------------------------------------------------------ the end

    def teardown(self) -> None:
        pair = self.pair
        pair.simulator.scenario.faults = Faults()
        if not pair.connected:
            pair.connect()
        pair.advance(TOMBSTONE_GRACE + RESUME_GRACE + 2 * RING_TIMEOUT)
        self.dials_resolve_at_most_once()
        self.every_event_acked_once()
        for tag, model in self.dials.items():
            assert model.cancelled or len(model.resolutions) == 1, tag
        assert pair.client.pending_dials == frozenset()
        self._check_calls_agree()
        live = pair.simulator.live_calls()
        assert {call.protocol for call in live} <= {pair.client.protocol}, live
        assert pair.simulator.pending_dials() == 0
        check_client_frames(pair)
        for call_id in pair.client.live_call_ids:
            pair.client.end(call_id)
        pair.advance(RING_TIMEOUT)
        self.dials_resolve_at_most_once()
        assert pair.simulator.live_actions() == []
        assert pair.simulator.live_messages() == []
        for control_id, (done, _) in self.actions.items():
            # An action ends exactly once, unless nobody waits for it or it never started.
            assert control_id in self.abandoned | self.refused or done == 1, control_id


PairMachine.TestCase.settings = settings(stateful_step_count=50)
TestPairMachine = PairMachine.TestCase

"""The call-control surface of the adapter against the simulator, over real sockets, on
both backends: every family end to end (media, input, detection, digits, tap, bridging,
messaging), a call that ends mid-action, and starts that are cancelled.

Each test dials (or receives) a call whose far end is scripted by the scenario, drives the
verb through ``Call`` / ``RelayClient`` and ends by checking on the simulator that nothing
is left running (``live_actions()``, ``live_calls()``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import anyio
import pytest
from anyio_support import BOUND, FAST, FROM, A, B, C, barrier, make_client, phone
from gate_proxy import gate_proxy

from relay_anyio import (
    Call,
    CallGoneError,
    CollectResult,
    ConnectError,
    ConnectState,
    DetectResult,
    Message,
    MessageState,
    PlayState,
    RecordResult,
    RelayClient,
    SendDigitsResult,
    SimulatorServer,
    TapResult,
    serve_simulator,
)
from relay_proto import ActionStateChanged, Event, PlayStateChanged

pytestmark = pytest.mark.anyio

TAP = {"type": "audio", "params": {"direction": "both"}}
RTP = {"type": "rtp", "params": {"addr": "127.0.0.1", "port": 9}}


def plan(**destinations: Mapping[str, Any]) -> dict[str, Any]:
    """``FAST`` with scripted far ends (keys: A, B, C, or ``default``)."""
    numbers = {"A": A, "B": B, "C": C}
    default = dict(destinations.pop("default", {}))
    return {
        **FAST,
        "default": {"outcome": "answer", "after": 0.02, **default},
        "destinations": {
            numbers[name]: {"outcome": "answer", "after": 0.02, **script}
            for name, script in destinations.items()
        },
    }


class Session:
    """One answered call to a scripted far end, and the action events its client saw."""

    client: RelayClient
    call: Call

    def __init__(self, sim: SimulatorServer) -> None:
        self.sim = sim
        self._send, self._events = anyio.create_memory_object_stream[ActionStateChanged](256)

    def on_event(self, event: Event) -> None:
        if isinstance(event, ActionStateChanged):
            self._send.send_nowait(event)

    async def next_event(self, verb: str) -> ActionStateChanged:
        """The next event of a ``verb`` action (plays of a prompt are skipped)."""
        while True:
            event = await self._events.receive()
            if event.verb == verb and not isinstance(event, PlayStateChanged):
                return event


@contextlib.asynccontextmanager
async def dialled(scenario: Mapping[str, Any], to: str = A) -> AsyncIterator[Session]:
    """An answered call to ``to``; afterwards nothing may be left live on the simulator."""
    async with serve_simulator(scenario=dict(scenario)) as sim:
        session = Session(sim)
        session.client = client = make_client(sim, on_event=session.on_event)
        async with client, session._send, session._events:
            with anyio.fail_after(BOUND):
                session.call = await client.dial([[phone(to)]])
            yield session
            with anyio.fail_after(BOUND):
                await session.call.hangup()
                await barrier(client)
            assert sim.live_actions() == []
            assert sim.live_calls() == []


# --------------------------------------------------------------------------- media


async def test_record_finishes_with_a_url() -> None:
    async with dialled(plan(A={"record": {"seconds": 0.05, "end": "silence"}})) as s:
        with anyio.fail_after(BOUND):
            action = await s.call.record({"format": "wav", "end_silence_timeout": 0.02})
            assert [a.verb for a in s.sim.live_actions()] == ["record"]
            result = await action.wait()
        assert isinstance(result, RecordResult)
        assert result.state == "finished"
        assert result.url == f"https://sim.invalid/recordings/{action.control_id}.wav"
        assert result.duration is not None
        assert result.duration > 0
        assert result.size == int(result.duration * 16000)
        assert action.done


async def test_record_until_stopped() -> None:
    async with dialled(plan(A={"record": {"seconds": None}})) as s:
        with anyio.fail_after(BOUND):
            action = await s.call.record({"beep": True})
            assert (await s.next_event("record")).state == "recording"
            assert not action.settled
            assert (await action.stop())["code"] == "200"
            result = await action.wait()
        assert isinstance(result, RecordResult)
        assert (result.state, result.url is not None) == ("finished", True)
        assert s.sim.live_actions() == []


async def test_call_ending_mid_record_settles_the_record() -> None:
    async with dialled(plan(A={"record": {"seconds": None}, "hangup_after": 0.1})) as s:
        with anyio.fail_after(BOUND):
            action = await s.call.record()
            result = await action.wait()
            assert await s.call.wait_for_ended() == "hangup"
        # The simulator sends the record's final event before the call's end (with what
        # was recorded); a server that sends none settles it as ``call_ended``.
        assert result.call_ended or (isinstance(result, RecordResult) and result.url)
        assert action.done
        assert s.sim.live_actions() == []


async def test_tap_until_stopped() -> None:
    async with dialled(plan()) as s:
        with anyio.fail_after(BOUND):
            action = await s.call.tap(TAP, RTP)
            assert (await s.next_event("tap")).state == "tapping"
            assert [a.verb for a in s.sim.live_actions()] == ["tap"]
            await action.stop()
            result = await action.wait()
        assert isinstance(result, TapResult)
        assert result.state == "finished"
        assert result.device["type"] == "rtp"
        assert s.sim.live_actions() == []


# --------------------------------------------------------------------------- input

PROMPT = [{"type": "tts", "params": {"text": "Press one."}}]


@pytest.mark.parametrize(
    ("answer", "kind", "digits"),
    [
        ({"digits": "1", "after": 0.01}, "digit", "1"),
        ("no_input", "no_input", None),
        ({"no_match": True, "after": 0.01}, "no_match", None),
    ],
)
async def test_play_and_collect(answer: Any, kind: str, digits: str | None) -> None:
    collect = {"digits": {"max": 1, "digit_timeout": 1}, "initial_timeout": 0.1}
    async with dialled(plan(A={"input": [answer]})) as s:
        with anyio.fail_after(BOUND):
            action = await s.call.play_and_collect(PROMPT, collect)
            result = await action.wait()
        assert isinstance(result, CollectResult)
        assert (result.kind, result.final, result.digits) == (kind, True, digits)
        assert action.prompt_state is PlayState.FINISHED


async def test_play_and_collect_partial_speech() -> None:
    speech = {"speech": "talk to an agent", "confidence": 0.8, "after": 0.01, "seconds": 0.05}
    collect = {"speech": {"end_silence_timeout": 1}, "partial_results": True}
    partials: list[str | None] = []
    async with dialled(plan(A={"input": [speech]})) as s:
        with anyio.fail_after(BOUND):
            action = await s.call.play_and_collect(PROMPT, collect)
            while not (event := await s.next_event("play_and_collect")).settled:
                if isinstance(event.result, CollectResult):
                    assert not event.result.final
                    partials.append(event.result.text)
            result = await action.wait()
    assert isinstance(result, CollectResult)
    assert (result.kind, result.final) == ("speech", True)
    assert (result.text, result.confidence) == ("talk to an agent", 0.8)
    assert len(partials) >= 2
    assert all(text and "talk to an agent".startswith(text) for text in partials)


async def test_collect_digits_with_a_terminator() -> None:
    answer = {"digits": "42", "terminator": "#", "after": 0.01, "interval": 0.01}
    async with dialled(plan(A={"input": answer})) as s:
        with anyio.fail_after(BOUND):
            action = await s.call.collect(digits={"max": 5, "terminators": "#"}, initial_timeout=1)
            result = await action.wait()
    assert isinstance(result, CollectResult)
    assert (result.kind, result.digits, result.terminator) == ("digit", "42", "#")


async def test_send_digits() -> None:
    async with dialled(plan()) as s:
        with anyio.fail_after(BOUND):
            result = await s.call.send_digits("12")
        assert isinstance(result, SendDigitsResult)
        assert result.state == "finished"
        assert s.sim.live_actions() == []


# --------------------------------------------------------------------------- detection


async def test_detect_machine_then_ready() -> None:
    machine = {"result": "MACHINE", "after": 0.02, "ready_after": 0.05}
    async with dialled(plan(A={"machine": machine})) as s:
        with anyio.fail_after(BOUND):
            action = await s.call.detect_answering_machine(detect_message_end=True, timeout=5)
            first = await action.wait()
            assert isinstance(first, DetectResult)
            assert (first.kind, first.result) == ("machine", "MACHINE")
            ready = await action.wait_for("READY")
            assert ready is not None
            assert (ready.kind, ready.result) == ("machine", "READY")
            states = [(await s.next_event("detect")).state for _ in range(3)]
            assert await action.wait_for("READY") is ready  # at once: already reported
        assert states == ["MACHINE", "READY", "finished"]  # the detector went on after it
        assert [d.result for d in action.detections] == ["MACHINE", "READY"]
        assert action.done
        assert action.result is first
        assert s.sim.live_actions() == []


@pytest.mark.parametrize("verdict", ["HUMAN", "UNKNOWN"])
async def test_detect_a_human(verdict: str) -> None:
    async with dialled(plan(A={"machine": {"result": verdict, "after": 0.02}})) as s:
        with anyio.fail_after(BOUND):
            action = await s.call.detect_answering_machine(detect_message_end=True, timeout=5)
            result = await action.wait()
            assert await action.wait_for("READY") is None  # it finished without a beep
    assert isinstance(result, DetectResult)
    assert (result.kind, result.result) == ("machine", verdict)
    assert action.state == "finished"


async def test_detect_fax() -> None:
    async with dialled(plan(A={"fax": {"tone": "CED", "tone_after": 0.02}})) as s:
        with anyio.fail_after(BOUND):
            action = await s.call.detect_fax(timeout=5)
            result = await action.wait()
    assert isinstance(result, DetectResult)
    assert (result.kind, result.result) == ("fax", "CED")


# --------------------------------------------------------------------------- bridging


async def test_connect_then_the_peer_hangs_up_with_its_partner() -> None:
    async with dialled(plan(B={"hangup_after": 0.05})) as s:
        with anyio.fail_after(BOUND):
            peer = await s.call.connect(
                [[phone(B)]], ringback=PROMPT, status_url="https://example.com/bridge"
            )
            assert s.call.peer is peer
            assert s.call.connect_state is ConnectState.CONNECTED
            assert peer in s.client.calls
            assert peer.device["params"]["to_number"] == B
            assert await peer.wait_for_ended() == "hangup"
            assert await s.call.wait_for_ended() == "hangup"  # bridged legs end together
        assert s.client.calls == []


async def test_connect_to_a_busy_number() -> None:
    async with dialled(plan(B={"outcome": "busy"})) as s:
        with anyio.fail_after(BOUND), pytest.raises(ConnectError) as caught:
            await s.call.connect([[phone(B)]])
        assert (caught.value.reason, caught.value.source) == ("busy", "endpoint")
        assert s.call.connect_state is ConnectState.FAILED
        assert not s.call.ended
        assert [call.call_id for call in s.client.calls] == [s.call.call_id]


async def test_disconnect_ends_the_peer_and_keeps_the_call() -> None:
    async with dialled(plan()) as s:
        with anyio.fail_after(BOUND):
            peer = await s.call.connect([[phone(B)]])
            assert (await s.call.disconnect())["code"] == "200"
            assert await peer.wait_for_ended() == "hangup"
            await barrier(s.client)
        assert s.call.connect_state is ConnectState.DISCONNECTED
        assert s.call.peer is None
        assert not s.call.ended
        assert [call.call_id for call in s.sim.live_calls()] == [s.call.call_id]


# --------------------------------------------------------------------------- messaging


async def test_send_message_delivered_and_undelivered() -> None:
    scenario = plan(
        default={"message": {"state": "delivered", "after": 0.01}},
        B={"message": {"state": "undelivered", "after": 0.01, "reason": "Unreachable"}},
    )
    async with serve_simulator(scenario=scenario) as sim, make_client(sim) as client:
        with anyio.fail_after(BOUND):
            delivered = await client.send_message(to_number=A, from_number=FROM, body="Hi")
            refused = await client.send_message(to_number=B, from_number=FROM, body="Hi")
            assert await delivered.wait() == MessageState.DELIVERED
            assert await refused.wait() == MessageState.UNDELIVERED
        assert (delivered.reason, refused.reason) == (None, "Unreachable")
        assert delivered.message_id != refused.message_id
        assert sim.live_messages() == []


async def test_inbound_messages_through_a_handler_and_the_iterator() -> None:
    async with serve_simulator(scenario=FAST) as sim:
        received: list[Message] = []
        handled = anyio.Event()

        async def on_message(message: Message) -> None:
            received.append(message)
            handled.set()

        handler = make_client(sim, contexts=["office"])
        handler.on_message(on_message)
        async with handler, make_client(sim, contexts=["shop"]) as iterating:
            with anyio.fail_after(BOUND):
                await barrier(handler)
                await barrier(iterating)
                await sim.inject_message(
                    context="office", from_number=B, to_number=A, body="To the office"
                )
                await handled.wait()
                await sim.inject_message(
                    context="shop", from_number=C, to_number=A, media=["https://x.invalid/1"]
                )
                message = await anext(iterating.inbound_messages())
        (first,) = received
        assert (first.from_number, first.body, first.state) == (B, "To the office", "received")
        assert (message.from_number, message.media, message.context) == (
            C,
            ("https://x.invalid/1",),
            "shop",
        )
        assert message.done


# --------------------------------------------------------------------------- cancelled starts


STARTS: dict[str, Any] = {
    "record": lambda call: call.record(),
    "tap": lambda call: call.tap(TAP, RTP),
    "collect": lambda call: call.collect(digits={"max": 4}, initial_timeout=60),
    "detect": lambda call: call.detect_answering_machine(timeout=60),
    "play_and_collect": lambda call: call.prompt_tts("Hi", {"digits": {"max": 1}}),
}


@pytest.mark.parametrize("verb", sorted(STARTS))
async def test_start_cancelled_after_the_server_accepted_it(verb: str) -> None:
    scenario = plan(A={"record": {"seconds": None}, "machine": {"result": "HUMAN", "after": 60}})
    async with (
        serve_simulator(scenario=scenario, ping_interval=None) as sim,
        gate_proxy(sim.port) as proxy,
    ):
        client = RelayClient(project="p", token="t", url=f"ws://127.0.0.1:{proxy.port}")
        async with client:
            with anyio.fail_after(BOUND):
                call = await client.dial([[phone(A)]])
                proxy.hold = True
                with anyio.CancelScope() as scope:
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(STARTS[verb], call)
                        await proxy.spoke.wait()  # the server has accepted the start
                        assert [action.verb for action in sim.live_actions()] == [verb]
                        scope.cancel()
                assert scope.cancelled_caught
                proxy.release()
                await barrier(client)  # the reply came: the client stopped the action
            assert sim.live_actions() == []
            assert call.actions == {}
            await call.hangup()
        assert sim.live_calls() == []


@pytest.mark.parametrize("verb", sorted(STARTS))
async def test_start_cancelled_at_once(verb: str) -> None:
    async with dialled(plan(A={"record": {"seconds": None}})) as s:
        with anyio.move_on_after(0) as scope:
            await STARTS[verb](s.call)
        assert scope.cancelled_caught
        await barrier(s.client)
        assert s.sim.live_actions() == []
        assert s.call.actions == {}


# --------------------------------------------------------------------------- edges


async def test_cancelled_connect_leaves_no_ringing_peer() -> None:
    async with dialled(plan(B={"outcome": "no_answer"})) as s:
        with anyio.move_on_after(0.1) as scope:
            await s.call.connect([[phone(B)]])
        assert scope.cancelled_caught
        await barrier(s.client)  # the disconnect was sent and handled
        assert [call.call_id for call in s.sim.live_calls()] == [s.call.call_id]
        assert not s.call.ended


async def test_call_ending_mid_collect_and_detect() -> None:
    scenario = plan(A={"hangup_after": 0.1, "machine": {"result": "HUMAN", "after": 60}})
    async with dialled(scenario) as s:
        with anyio.fail_after(BOUND):
            collect = await s.call.collect(digits={"max": 4}, initial_timeout=60)
            detect = await s.call.detect_answering_machine(timeout=60)
            results = [await collect.wait(), await detect.wait()]
            await s.call.wait_for_ended()
        for result in results:
            assert result.call_ended or result.state == "error", result
        assert await detect.wait_for("MACHINE", "READY") is None
        assert collect.done
        assert detect.done
        assert s.call.actions == {}


async def test_detector_that_hears_nothing_finishes_at_its_timeout() -> None:
    async with dialled(plan(A={"machine": {"result": "HUMAN", "after": 60}})) as s:
        with anyio.fail_after(BOUND):
            action = await s.call.detect_answering_machine(timeout=0.05)
            result = await action.wait()
    assert isinstance(result, DetectResult)
    assert (result.state, result.result) == ("finished", None)


async def test_duplicated_and_reordered_events_settle_each_action_once() -> None:
    faults = {"duplicate_events": True, "reorder": True}
    answer = {"digits": "7", "after": 0.01}
    scenario = {**plan(A={"input": [answer], "record": {"seconds": 0.02}}), "faults": faults}
    completed: list[str] = []
    async with dialled(scenario) as s:
        with anyio.fail_after(BOUND):
            record = await s.call.record(
                {"end_silence_timeout": 0.01}, on_completed=lambda a: completed.append(a.verb)
            )
            collect = await s.call.play_and_collect(
                PROMPT, {"digits": {"max": 1}}, on_completed=lambda a: completed.append(a.verb)
            )
            recorded, collected = await record.wait(), await collect.wait()
            await barrier(s.client)
        assert isinstance(recorded, RecordResult)
        assert recorded.url
        assert isinstance(collected, CollectResult)
        assert collected.digits == "7"
        assert sorted(completed) == ["play_and_collect", "record"]


async def test_an_action_on_an_ended_call_is_refused() -> None:
    async with dialled(plan()) as s:
        with anyio.fail_after(BOUND):
            await s.call.hangup()
            with pytest.raises(CallGoneError):
                await s.call.record()
        assert s.call.actions == {}


async def test_stopping_an_action_that_is_over_is_not_an_error() -> None:
    # The server answers 404 to a stop naming no running action: that must not read as
    # the call being gone (CallGoneError) while the call is up.
    async with dialled(plan(A={"machine": {"result": "HUMAN", "after": 0.01}})) as s:
        with anyio.fail_after(BOUND):
            detector = await s.call.detect_answering_machine(timeout=5)
            await detector.wait()
            await barrier(s.client)
            assert detector.done
            assert await detector.stop() == {}
            play = await s.call.play_tts("Hello.")
            assert await play.wait() is PlayState.FINISHED
            assert await play.stop() == {}
            assert not s.call.ended

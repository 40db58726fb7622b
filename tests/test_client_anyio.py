"""``RelayClient`` end to end against the simulator on a real socket, on asyncio and trio.

Each test runs a real client against ``serve_simulator`` and checks both sides: what the
client returned or raised, and what the simulator saw (``live_calls()`` must end empty:
no call is ever leaked). Synchronisation is by events and round trips (``barrier``),
every wait bounded by ``fail_after``.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

import anyio
import pytest
from anyio_support import BOUND, FAST, FROM, A, B, C, barrier, make_client, phone, scenario

from relay_anyio import (
    AuthenticationError,
    Call,
    CallGoneError,
    CallState,
    ConfigurationError,
    ConnectionLostError,
    DialFailedError,
    DialTimeoutError,
    PlayState,
    RelayClient,
    RequestError,
    serve_simulator,
)
from relay_proto import CallStateChanged, Event
from relay_proto.simulator import Faults, Refusal

pytestmark = pytest.mark.anyio


async def test_single_dial_play_hangup() -> None:
    async with serve_simulator(scenario=FAST) as sim, make_client(sim) as client:
        with anyio.fail_after(BOUND):
            call = await client.dial(devices=[[phone(A)]])
            states = [call.state]
            assert call.direction == "outbound"
            assert call.device["params"]["to_number"] == A
            assert [c.call_id for c in sim.live_calls()] == [call.call_id]
            action = await call.play([{"type": "tts", "text": "Hello!"}])
            assert await action.wait() is PlayState.FINISHED
            assert action.done
            await call.hangup()
        states.append(call.state)
        assert states == [CallState.ANSWERED, CallState.ENDED]
        assert call.end_reason == "hangup"
        assert sim.live_calls() == []
        assert client.calls == []
        await call.hangup()  # idempotent once ended


async def test_serial_failover_busy_then_answered() -> None:
    plan = scenario({A: {"outcome": "busy", "after": 0.05}})
    async with serve_simulator(scenario=plan) as sim, make_client(sim) as client:
        with anyio.fail_after(BOUND):
            call = await client.dial(devices=[[phone(A)], [phone(B)]])
            assert call.device["params"]["to_number"] == B
            legs = {c.device["params"]["to_number"]: c for c in sim.all_calls()}
            assert legs[A].state is CallState.ENDED
            assert legs[A].end_reason == "busy"
            assert legs[B].call_id == call.call_id
            await call.hangup()
        assert sim.live_calls() == []


async def test_parallel_ring_one_answers_the_other_is_cancelled() -> None:
    plan = scenario(
        {A: {"outcome": "answer", "after": 0.3}, B: {"outcome": "answer", "after": 0.05}}
    )
    async with serve_simulator(scenario=plan) as sim, make_client(sim) as client:
        with anyio.fail_after(BOUND):
            call = await client.dial(devices=[[phone(A), phone(B)]])
            assert call.device["params"]["to_number"] == B
            legs = {c.device["params"]["to_number"]: c for c in sim.all_calls()}
            assert legs[A].state is CallState.ENDED
            assert legs[A].end_reason == "cancel"
            assert [c.call_id for c in sim.live_calls()] == [call.call_id]
            await call.hangup()
        assert sim.live_calls() == []


async def test_every_leg_fails() -> None:
    plan = scenario(
        {
            A: {"outcome": "busy", "after": 0.02},
            B: {"outcome": "decline", "after": 0.02},
            C: {"outcome": "error", "after": 0.02},
        }
    )
    async with serve_simulator(scenario=plan) as sim, make_client(sim) as client:
        with anyio.fail_after(BOUND), pytest.raises(DialFailedError) as info:
            await client.dial(devices=[[phone(A)], [phone(B), phone(C)]])
        reasons = {leg.device["params"]["to_number"]: leg.end_reason for leg in info.value.legs}
        assert reasons == {A: "busy", B: "decline", C: "error"}
        text = str(info.value)
        for number, reason in reasons.items():
            assert f"{number}: {reason}" in text
        assert info.value.tag is not None
        assert sim.live_calls() == []


async def test_dial_timeout_hangs_up_the_ringing_legs() -> None:
    plan = scenario({A: {"outcome": "no_answer"}, B: {"outcome": "no_answer"}})
    async with serve_simulator(scenario=plan) as sim, make_client(sim) as client:
        with anyio.fail_after(BOUND), pytest.raises(DialTimeoutError) as info:
            await client.dial(devices=[[phone(A), phone(B)]], dial_timeout=0.2)
        assert isinstance(info.value, TimeoutError)
        assert len(info.value.legs) == 2
        await barrier(client)
        assert sim.live_calls() == []
        calls = sim.all_calls()
        assert len(calls) == 2
        assert {c.end_reason for c in calls} == {"cancel"}


@pytest.mark.parametrize(
    ("devices", "options"),
    [
        pytest.param([[phone("5551234")]], {}, id="not-e164"),
        pytest.param([], {}, id="no-groups"),
        pytest.param([[]], {}, id="empty-group"),
        pytest.param([[phone(A, timeout=0)]], {}, id="zero-ring-timeout"),
        pytest.param([[phone(A)]], {"max_duration": 0}, id="max-duration-zero"),
        pytest.param([[phone(A)]], {"max_duration": -5}, id="max-duration-negative"),
        pytest.param([[phone(A)]], {"dial_timeout": 0}, id="dial-timeout-zero"),
        pytest.param([[phone(A)]], {"dial_timeout": float("nan")}, id="dial-timeout-nan"),
        pytest.param(
            [
                [
                    {
                        "type": "sip",
                        "params": {
                            "from": "sip:a@b",
                            "to": "sip:c@d",
                            "headers": [{"name": "Bad", "value": "x"}],
                        },
                    }
                ]
            ],
            {},
            id="sip-header-without-X-",
        ),
    ],
)
async def test_bad_input_raises_configuration_error_and_sends_nothing(
    devices: Any, options: dict[str, Any]
) -> None:
    async with serve_simulator(scenario=FAST) as sim, make_client(sim) as client:
        with pytest.raises(ConfigurationError):
            await client.dial(devices=devices, **options)
        await barrier(client)
        assert sim.all_calls() == []
        assert sim.simulator.pending_dials() == 0
        # The client is still fine afterwards.
        with anyio.fail_after(BOUND):
            call = await client.dial(devices=[[phone(A)]])
            await call.hangup()


async def test_a_tag_already_pending_is_refused() -> None:
    plan = scenario({A: {"outcome": "no_answer"}})
    ringing = anyio.Event()

    def hook(event: Event) -> None:
        if isinstance(event, CallStateChanged) and event.state is CallState.RINGING:
            ringing.set()

    async with serve_simulator(scenario=plan) as sim, make_client(sim, on_event=hook) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(lambda: client.dial(devices=[[phone(A)]], tag="T1"))
            with anyio.fail_after(BOUND):
                await ringing.wait()
            with pytest.raises(ConfigurationError):
                await client.dial(devices=[[phone(B)]], tag="T1")
            tg.cancel_scope.cancel()
        await barrier(client)
        assert sim.live_calls() == []


@pytest.mark.parametrize("code", ["503", -32000])
async def test_dial_refused(code: str | int) -> None:
    faults = Faults(dial_refused=Refusal(code=code, message="no capacity"))
    async with serve_simulator(scenario=scenario(faults=faults)) as sim:
        async with make_client(sim) as client:
            with anyio.fail_after(BOUND), pytest.raises(DialFailedError) as info:
                await client.dial(devices=[[phone(A)]])
        assert info.value.code == int(code)
        assert "no capacity" in str(info.value)
        assert sim.all_calls() == []


async def test_refused_dial_whose_call_appears_anyway_is_ended() -> None:
    faults = Faults(dial_refused=Refusal(code="500"), create_call_after_refusal=True)
    async with serve_simulator(scenario=scenario(faults=faults)) as sim:
        async with make_client(sim) as client:
            with anyio.fail_after(BOUND), pytest.raises(DialFailedError):
                await client.dial(devices=[[phone(A)]])
            # The leg the server created despite the refusal is ended on sight.
            with anyio.fail_after(BOUND):
                while sim.live_calls():
                    await barrier(client)
            assert client.calls == []
        assert len(sim.all_calls()) == 1


async def test_max_duration_ends_the_call() -> None:
    async with serve_simulator(scenario=FAST) as sim, make_client(sim) as client:
        with anyio.fail_after(BOUND):
            call = await client.dial(devices=[[phone(A)]], max_duration=1)
            started = anyio.current_time()
            reason = await call.wait_for_ended()
        assert anyio.current_time() - started >= 0.9
        assert reason in ("max_duration", "hangup")
        assert call.ended
        await barrier(client)
        assert sim.live_calls() == []


async def test_far_end_hangs_up() -> None:
    plan = scenario({A: {"outcome": "answer", "after": 0.02, "hangup_after": 0.1}})
    async with serve_simulator(scenario=plan) as sim, make_client(sim) as client:
        with anyio.fail_after(BOUND):
            call = await client.dial(devices=[[phone(A)]])
            assert await call.wait_for_ended() == "hangup"
        assert call.state is CallState.ENDED
        assert client.calls == []
        assert sim.live_calls() == []


async def test_call_that_ends_right_after_the_answer_is_still_returned() -> None:
    # The far end hangs up almost at once: the answer and the end can reach the client in
    # one read. dial() must still return the Call (already ended), never a KeyError.
    plan = scenario({A: {"outcome": "answer", "after": 0.0, "hangup_after": 1e-6}})
    async with serve_simulator(scenario=plan) as sim, make_client(sim) as client:
        for _ in range(5):
            with anyio.fail_after(BOUND):
                call = await client.dial(devices=[[phone(A)]])
                assert await call.wait_for_ended() == "hangup"
        assert client.calls == []
        assert sim.live_calls() == []


async def test_play_stop_and_controls() -> None:
    async with serve_simulator(scenario=FAST) as sim, make_client(sim) as client:
        with anyio.fail_after(BOUND):
            call = await client.dial(devices=[[phone(A)]])
            action = await call.play([{"type": "silence", "params": {"duration": 30}}])
            assert not action.done
            await action.pause()
            await action.resume()
            await action.volume(-3.0)
            await action.stop()
            state = await action.wait()
        assert state in (PlayState.FINISHED, PlayState.ERROR)
        with anyio.fail_after(BOUND):
            await call.hangup()
        assert sim.live_calls() == []


async def test_play_is_abandoned_when_the_call_ends() -> None:
    plan = scenario({A: {"outcome": "answer", "after": 0.02, "hangup_after": 0.2}})
    async with serve_simulator(scenario=plan) as sim, make_client(sim) as client:
        with anyio.fail_after(BOUND):
            call = await client.dial(devices=[[phone(A)]])
            action = await call.play([{"type": "silence", "params": {"duration": 30}}])
            try:
                state = await action.wait()
            except ConnectionLostError:
                pass  # the call went away first: also a valid ending
            else:
                assert state is PlayState.ERROR
            await call.wait_for_ended()
        assert sim.live_calls() == []


async def test_inbound_call_through_the_iterator() -> None:
    async with (
        serve_simulator(scenario=FAST) as sim,
        make_client(sim, contexts=["office"]) as client,
    ):
        with anyio.fail_after(BOUND):
            await barrier(client)
            call_id = await sim.inject_inbound_call(context="office", from_number=B, to_number=A)
            call = await anext(client.inbound_calls())
            assert call.call_id == call_id
            assert call.direction == "inbound"
            assert call.context == "office"
            await call.answer()
            await barrier(client)
            (live,) = sim.live_calls()
            assert live.state is CallState.ANSWERED
            await call.hangup()
        assert sim.live_calls() == []


async def test_inbound_iteration_ends_when_the_client_closes() -> None:
    seen: list[Call] = []
    async with serve_simulator(scenario=FAST) as sim:
        client = make_client(sim, contexts=["office"])
        with pytest.raises(RuntimeError):
            client.inbound_calls()  # not entered yet
        async with anyio.create_task_group() as tg, client:
            calls = client.inbound_calls()

            async def consume() -> None:
                async for call in calls:
                    seen.append(call)

            tg.start_soon(consume)
            await barrier(client)
            await sim.inject_inbound_call(context="office", from_number=B, to_number=A)
            await barrier(client)
            # The iteration ended by itself: the task group can finish.
        assert len(seen) == 1
        assert seen[0].ended
        assert sim.live_calls() == []


async def test_inbound_call_nobody_takes_is_refused_busy() -> None:
    overflow = {"inbound_buffer": 0, "inbound_overflow": "busy"}  # the default passes it
    async with (
        serve_simulator(scenario=FAST) as sim,
        make_client(sim, contexts=["office"], **overflow) as client,
    ):
        await barrier(client)
        await sim.inject_inbound_call(context="office", from_number=B, to_number=A)
        with anyio.fail_after(BOUND):
            while sim.live_calls():
                await barrier(client)
            await barrier(client)  # the ended events went out before the ping's reply
        (call,) = sim.all_calls()
        assert call.end_reason == "busy"
        assert client.calls == []


async def test_inbound_call_through_on_call() -> None:
    answered = anyio.Event()
    seen: list[Call] = []

    async def handler(call: Call) -> None:
        seen.append(call)
        await call.answer()
        answered.set()
        await call.wait_for_ended()

    async with serve_simulator(scenario=FAST) as sim:
        async with make_client(sim, contexts=["office"]) as client:
            client.on_call(handler)
            with anyio.fail_after(BOUND):
                await barrier(client)
                await sim.inject_inbound_call(context="office", from_number=B, to_number=A)
                await answered.wait()
                await barrier(client)
            (live,) = sim.live_calls()
            assert live.state is CallState.ANSWERED
            assert seen[0].call_id == live.call_id
        # Leaving ``async with`` hung it up (and the handler's wait returned).
        assert sim.live_calls() == []
        assert seen[0].ended


async def test_exit_hangs_up_live_calls_and_pending_dials() -> None:
    plan = scenario({C: {"outcome": "no_answer"}})
    async with serve_simulator(scenario=plan) as sim:
        async with make_client(sim) as client:
            with anyio.fail_after(BOUND):
                first = await client.dial(devices=[[phone(A)]])
                second = await client.dial(devices=[[phone(B)]])
            assert len(sim.live_calls()) == 2
        assert first.ended
        assert second.ended
        assert sim.live_calls() == []
        with pytest.raises(RuntimeError):
            await client.dial(devices=[[phone(A)]])


async def test_exit_with_hangup_on_exit_false_leaves_calls_up() -> None:
    async with serve_simulator(scenario=FAST) as sim:
        async with make_client(sim, hangup_on_exit=False) as client:
            with anyio.fail_after(BOUND):
                await client.dial(devices=[[phone(A)]])
        assert len(sim.live_calls()) == 1


async def test_wrong_credentials_raise_authentication_error() -> None:
    async with serve_simulator(credentials={"project": "right"}, scenario=FAST) as sim:
        client = make_client(sim, token="wrong-token-marker")
        with anyio.fail_after(BOUND), pytest.raises(AuthenticationError) as info:
            async with client:
                pytest.fail("entered the client with wrong credentials")
        assert "wrong-token-marker" not in str(info.value)
        assert info.value.code == -32002
        assert sim.connection_count == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_nothing_listening_raises_connection_lost() -> None:
    client = RelayClient(
        project="p",
        token="t",
        url=f"ws://127.0.0.1:{_free_port()}",
        backoff_initial=0.01,
        connect_timeout=2.0,
    )
    with anyio.fail_after(BOUND), pytest.raises(ConnectionLostError):
        async with client:
            pytest.fail("entered a client with no server")


async def test_client_is_not_reentrant_and_needs_async_with() -> None:
    async with serve_simulator(scenario=FAST) as sim:
        client = make_client(sim)
        with pytest.raises(RuntimeError):
            await client.dial(devices=[[phone(A)]])
        async with client:
            with pytest.raises(RuntimeError):
                async with client:
                    pass


async def test_execute_and_ping() -> None:
    async with serve_simulator(scenario=FAST) as sim, make_client(sim) as client:
        with anyio.fail_after(BOUND):
            pong = await client.ping()
            assert "timestamp" in pong
            result = await client.execute("signalwire.receive", {"contexts": ["extra"]})
            assert result["code"] == "200"
            call = await client.dial(devices=[[phone(A)]])
            play = {"control_id": "P1", "play": [{"type": "silence", "params": {"duration": 9}}]}
            assert (await call.execute("calling.play", play))["code"] == "200"
            # a verb the simulator does not model is refused, never a silent 200
            with pytest.raises(RequestError) as info:
                await call.execute("calling.ai", {"prompt": {}})
            assert not isinstance(info.value, CallGoneError)
            assert info.value.code == -32601
            await call.hangup()


async def test_secrets_stay_out_of_repr_logs_and_errors(caplog: pytest.LogCaptureFixture) -> None:
    marker = "SECRET-TOKEN-MARKER-1234"
    caplog.set_level(logging.DEBUG)
    events: list[Event] = []
    async with serve_simulator(credentials={"project": marker}, scenario=FAST) as sim:
        client = make_client(sim, token=marker, on_event=events.append)
        assert marker not in repr(client)
        async with client:
            assert marker not in repr(client)
            with anyio.fail_after(BOUND):
                call = await client.dial(devices=[[phone(A)]])
                action = await call.play([{"type": "tts", "text": "hi"}])
                await action.wait()
                assert marker not in repr(call)
                assert marker not in repr(action)
                await call.hangup()
        assert marker not in repr(sim)
        wrong = make_client(sim, token=marker + "-wrong")
        with anyio.fail_after(BOUND), pytest.raises(AuthenticationError) as info:
            async with wrong:
                pass
        assert marker not in str(info.value)
        assert marker not in repr(info.value)
    assert any(isinstance(e, CallStateChanged) for e in events)
    assert "signalwire.connect" in caplog.text  # frames were logged, redacted
    assert marker not in caplog.text
    for record in caplog.records:
        assert marker not in record.getMessage()


async def test_events_reach_on_event_and_hook_errors_are_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Event] = []

    def hook(event: Event) -> None:
        seen.append(event)
        raise RuntimeError("hook bug")

    async with serve_simulator(scenario=FAST) as sim, make_client(sim, on_event=hook) as client:
        with anyio.fail_after(BOUND):
            call = await client.dial(devices=[[phone(A)]])
            await call.hangup()
    states = [e.state for e in seen if isinstance(e, CallStateChanged)]
    assert CallState.ANSWERED in states
    assert CallState.ENDED in states
    assert "on_event hook raised" in caplog.text


def test_bad_options_raise_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        RelayClient(project="p", token="t", url="ws://127.0.0.1:1", backoff_initial=0)
    with pytest.raises(ConfigurationError):
        RelayClient(project="p", url="ws://127.0.0.1:1")
    with pytest.raises(ConfigurationError):
        RelayClient(project="p", token="t", host="https://example.com/x")
    with pytest.raises(ConfigurationError):
        RelayClient(project="p", token="t", url="ws://example.com")  # insecure off-loopback
    assert FROM.startswith("+")


async def test_serve_simulator_lets_the_block_error_out_as_itself() -> None:
    with pytest.raises(KeyError) as info:
        async with serve_simulator():
            raise KeyError("mine")
    assert type(info.value) is KeyError
    with anyio.CancelScope() as scope:
        async with serve_simulator():
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught

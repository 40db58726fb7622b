"""Cancellation never leaks a call, never hangs, and always propagates (STYLE.md, after
httpcore's ``test_cancellations.py``).

* a dial cancelled while its legs ring ends them on the simulator, and the cancellation
  reaches the caller's scope;
* a dial cancelled in the instant between the answer arriving and ``dial()`` returning
  hangs the answered call up (it is never handed over, never leaked);
* with a socket whose writes block forever (a slow fake stream), a cancelled dial and
  the exit of ``async with`` still return promptly, bounded by the client's timeouts;
* an exception or a cancellation out of the ``async with`` body propagates as itself
  (not an ``ExceptionGroup``) and the client's live calls are hung up on the way out.
"""

from __future__ import annotations

import anyio
import pytest
from anyio_support import (
    BOUND,
    A,
    B,
    barrier,
    make_client,
    patch_connect_tcp,
    phone,
    scenario,
)

from relay_anyio import Call, CallState, SimulatorServer, serve_simulator
from relay_proto import CallStateChanged, DialAnswered, Event

pytestmark = pytest.mark.anyio


class Ringing:
    """``on_event`` hook: set once ``count`` legs are ringing."""

    def __init__(self, count: int = 1) -> None:
        self.count = count
        self.legs: set[str] = set()
        self.event = anyio.Event()

    def __call__(self, event: Event) -> None:
        if isinstance(event, CallStateChanged) and event.state is CallState.RINGING:
            self.legs.add(event.call_id)
            if len(self.legs) >= self.count:
                self.event.set()


async def test_cancelled_dial_ends_the_ringing_legs() -> None:
    plan = scenario({A: {"outcome": "no_answer"}, B: {"outcome": "no_answer"}})
    ringing = Ringing(2)
    async with (
        serve_simulator(scenario=plan) as sim,
        make_client(sim, on_event=ringing) as client,
        anyio.create_task_group() as tg,
    ):
        with anyio.CancelScope() as scope:

            async def cancel_when_ringing() -> None:
                await ringing.event.wait()
                scope.cancel()

            tg.start_soon(cancel_when_ringing)
            with anyio.fail_after(BOUND):
                await client.dial(devices=[[phone(A), phone(B)]])
            pytest.fail("dial() returned although cancelled")
        assert scope.cancelled_caught
        await barrier(client)
        assert sim.live_calls() == []
        assert {c.end_reason for c in sim.all_calls()} == {"cancel"}
        assert client.calls == []


async def test_dial_cancelled_by_move_on_after() -> None:
    plan = scenario({A: {"outcome": "no_answer"}})
    async with serve_simulator(scenario=plan) as sim, make_client(sim) as client:
        with anyio.move_on_after(0.2) as scope:
            await client.dial(devices=[[phone(A)]])
        assert scope.cancelled_caught
        await barrier(client)
        assert sim.live_calls() == []
        (leg,) = sim.all_calls()
        assert leg.end_reason == "cancel"


async def test_dial_cancelled_before_it_was_written_sends_nothing() -> None:
    async with serve_simulator(scenario=scenario()) as sim, make_client(sim) as client:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await client.dial(devices=[[phone(A)]])
        assert scope.cancelled_caught
        await barrier(client)
        assert sim.all_calls() == []
        assert sim.simulator.pending_dials() == 0


async def test_cancel_as_the_answer_arrives_hangs_the_call_up() -> None:
    # The hook runs in the reader task just before the answer is delivered to dial():
    # cancelling there is the tightest race between "answered" and "dial() returned".
    scope = anyio.CancelScope()

    def cancel_on_answer(event: Event) -> None:
        if isinstance(event, DialAnswered):
            scope.cancel()

    async with serve_simulator(scenario=scenario()) as sim:
        client = make_client(sim, on_event=cancel_on_answer, cleanup_timeout=30.0)
        with anyio.fail_after(BOUND):
            async with client:
                with scope:
                    await client.dial(devices=[[phone(A)]])
                    pytest.fail("dial() returned although cancelled")
                assert scope.cancelled_caught
                await barrier(client)
                assert sim.live_calls() == []
                (leg,) = sim.all_calls()
                assert leg.state is CallState.ENDED
                assert leg.end_reason == "hangup"
                assert client.calls == []
            # Leaving did not wait for the forgotten call (cleanup_timeout is 30 s).


@pytest.mark.parametrize("after", [0.05, 0.1, 0.15])
async def test_cancel_at_the_moment_of_the_answer(after: float) -> None:
    # Ring time equal to the cancel time: whichever wins, nothing is left behind.
    plan = scenario({A: {"outcome": "answer", "after": after}})
    async with serve_simulator(scenario=plan) as sim, make_client(sim) as client:
        for _ in range(3):
            returned = None
            with anyio.move_on_after(after):
                returned = await client.dial(devices=[[phone(A)]])
            if returned is not None:
                with anyio.fail_after(BOUND):
                    await returned.hangup()
            await barrier(client)
            assert sim.live_calls() == []
            assert client.calls == []


async def test_cancelled_dial_with_a_blocked_socket_returns_promptly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    block = anyio.Event()
    plan = scenario({A: {"outcome": "no_answer"}})
    async with serve_simulator(scenario=plan) as sim:
        streams = patch_connect_tcp(monkeypatch, block)
        client = make_client(sim, cleanup_timeout=0.2, close_timeout=0.2, write_timeout=0.3)
        with anyio.fail_after(BOUND):
            async with client:
                block.set()  # from now on, every write blocks forever
                started = anyio.current_time()
                with anyio.move_on_after(0.1) as scope:
                    await client.dial(devices=[[phone(A)]])
                assert scope.cancelled_caught
                assert anyio.current_time() - started < 2.0
                assert streams[0].blocked_writes >= 1
            assert anyio.current_time() - started < 3.0


async def test_exit_with_a_blocked_socket_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    block = anyio.Event()
    async with serve_simulator(scenario=scenario()) as sim:
        patch_connect_tcp(monkeypatch, block)
        client = make_client(sim, cleanup_timeout=0.2, close_timeout=0.2, write_timeout=0.3)
        with anyio.fail_after(BOUND):
            async with client:
                call = await client.dial(devices=[[phone(A)]])
                block.set()
                started = anyio.current_time()
        assert anyio.current_time() - started < 3.0
        assert call.ended  # given up on: the client is closed


async def test_body_exception_propagates_as_itself_and_calls_are_hung_up() -> None:
    class Boom(Exception):
        pass

    calls: list[Call] = []

    async def use_client(sim: SimulatorServer) -> None:
        async with make_client(sim) as client:
            calls.append(await client.dial(devices=[[phone(A)]]))
            raise Boom("from the body")

    async with serve_simulator(scenario=scenario()) as sim:
        with anyio.fail_after(BOUND), pytest.raises(Boom) as info:
            await use_client(sim)
        (call,) = calls
        assert type(info.value) is Boom
        assert str(info.value) == "from the body"
        assert call.ended
        assert sim.live_calls() == []


async def test_cancelled_body_hangs_up_and_propagates() -> None:
    ringing = Ringing(2)  # A's leg, then B's
    plan = scenario({B: {"outcome": "no_answer"}})
    async with serve_simulator(scenario=plan) as sim:
        with anyio.fail_after(BOUND):
            with anyio.CancelScope() as scope:
                async with make_client(sim, on_event=ringing) as client:
                    call = await client.dial(devices=[[phone(A)]])
                    async with anyio.create_task_group() as tg:
                        tg.start_soon(lambda: client.dial(devices=[[phone(B)]]))
                        await ringing.event.wait()
                        scope.cancel()
        assert scope.cancelled_caught
        assert call.ended
        assert sim.live_calls() == []

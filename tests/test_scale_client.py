"""Many consumers, the client side, over real sockets on asyncio and trio: three
``RelayClient``s on one context of one ``serve_simulator``. ``Call.pass_()`` hands a call
to the others; the overflow policy passes what a full worker cannot take; ``drain()``
leaves the work to the others losing no call. Every call is answered by exactly one
worker and none is left live.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

import anyio
import pytest
from anyio_support import BOUND, FAST, A, B, barrier, make_client

from relay_anyio import (
    Call,
    ConfigurationError,
    Limits,
    RelayClient,
    SimulatorServer,
    Timeouts,
    serve_simulator,
)

pytestmark = pytest.mark.anyio

Handler = Callable[[Call], Awaitable[None]]


class Ledger:
    """Who answered which call; ``done`` once ``expected`` were answered and hung up."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.answered: list[tuple[int, str]] = []
        self.passed: list[Call] = []
        self.done = anyio.Event()

    def record(self, number: int, call: Call) -> None:
        self.answered.append((number, call.call_id))
        if len(self.answered) == self.expected:
            self.done.set()

    def answering(self, number: int, hold: anyio.Event | None = None) -> Handler:
        async def handle(call: Call) -> None:
            await call.answer()
            if hold is not None:
                await hold.wait()
            await call.hangup()
            self.record(number, call)

        return handle

    async def passing(self, call: Call) -> None:
        result = await call.pass_()
        assert result["code"] == "200"
        assert call.ended  # over for this client once the server accepted
        with anyio.fail_after(BOUND):
            assert await call.wait_for_ended() is None
        self.passed.append(call)


async def inject(sim: SimulatorServer, count: int) -> list[str]:
    return [
        await sim.inject_inbound_call(context="office", from_number=A, to_number=B)
        for _ in range(count)
    ]


def check_each_answered_once(sim: SimulatorServer, ledger: Ledger, injected: list[str]) -> None:
    handled = [call_id for _, call_id in ledger.answered]
    assert sorted(handled) == sorted(injected)
    assert sim.live_calls() == []
    ended = {call.call_id: call for call in sim.all_calls()}
    assert {ended[call_id].end_reason for call_id in injected} == {"hangup"}


def workers(sim: SimulatorServer, **options: object) -> list[RelayClient]:
    return [make_client(sim, contexts=["office"], **options) for _ in range(3)]


async def test_call_pass_hands_every_call_to_the_others() -> None:
    ledger = Ledger(24)
    async with serve_simulator(scenario=FAST) as sim:
        clients = workers(sim)
        async with clients[0], clients[1], clients[2]:
            clients[0].on_call(ledger.passing)
            for number in (1, 2):
                clients[number].on_call(ledger.answering(number))
            for client in clients:
                await barrier(client)
            with anyio.fail_after(BOUND):
                injected = await inject(sim, 24)
                await ledger.done.wait()
            assert clients[0].calls == []  # the passed calls are not its own any more
            passer = clients[0].protocol
        # Leaving ``async with`` (hangup_on_exit) hung up none of the passed calls.
        check_each_answered_once(sim, ledger, injected)
        assert ledger.passed
        assert {call.call_id for call in ledger.passed} <= set(injected)
        assert {number for number, _ in ledger.answered} == {1, 2}
        owners = {call.call_id: call.protocol for call in sim.all_calls()}
        assert passer not in {owners[call_id] for call_id in injected}


async def test_a_refused_pass_raises_and_the_call_stays_this_clients() -> None:
    async with serve_simulator(scenario=FAST) as sim:
        async with make_client(sim, contexts=["office"]) as client:
            got: list[Call] = []
            seen = anyio.Event()

            async def handle(call: Call) -> None:
                got.append(call)
                seen.set()

            client.on_call(handle)
            await barrier(client)
            await inject(sim, 1)
            with anyio.fail_after(BOUND):
                await seen.wait()
                call = got[0]
                await call.answer()
                with pytest.raises(Exception, match="409") as caught:
                    await call.pass_()
            assert "calling.pass" in str(caught.value)
            assert not call.ended
            assert client.calls == [call]
        assert sim.live_calls() == []  # hung up on exit: it stayed this client's


async def test_overflow_passes_what_a_full_worker_cannot_take() -> None:
    ledger, hold = Ledger(12), anyio.Event()
    async with serve_simulator(scenario=FAST) as sim:
        full = make_client(sim, contexts=["office"], max_handlers=1)
        others = workers(sim)[:2]
        async with full, others[0], others[1]:
            full.on_call(ledger.answering(0, hold))  # takes one call and holds it
            for number, client in enumerate(others, start=1):
                client.on_call(ledger.answering(number))
            for client in (full, *others):
                await barrier(client)
            with anyio.fail_after(BOUND):
                injected = await inject(sim, 12)
                while len(ledger.answered) < 11:
                    await barrier(full)
                hold.set()
                await ledger.done.wait()
        check_each_answered_once(sim, ledger, injected)
        assert Counter(number for number, _ in ledger.answered)[0] == 1


async def test_drained_mid_load_a_worker_loses_no_call() -> None:
    ledger, hold = Ledger(30), anyio.Event()
    async with serve_simulator(scenario=FAST) as sim:
        clients = workers(sim)
        async with clients[0], clients[1], clients[2]:
            clients[0].on_call(ledger.answering(0, hold))  # its calls wait in its handlers
            for number in (1, 2):
                clients[number].on_call(ledger.answering(number))
            for client in clients:
                await barrier(client)
            with anyio.fail_after(BOUND):
                injected = await inject(sim, 15)
                await barrier(clients[0])
                in_handlers = len(clients[0].calls)
                assert in_handlers == 5
                async with anyio.create_task_group() as tg:
                    tg.start_soon(clients[0].drain, BOUND)
                    await barrier(clients[0])  # the unsubscribe was handled
                    injected += await inject(sim, 15)  # they go to the others
                    hold.set()  # the handlers finish their calls
                await ledger.done.wait()
            assert clients[0].calls == []
        check_each_answered_once(sim, ledger, injected)
        counts = Counter(number for number, _ in ledger.answered)
        assert counts[0] == in_handlers  # nothing new reached the drained worker


async def test_drain_passes_the_calls_waiting_in_the_buffer() -> None:
    ledger = Ledger(9)
    async with serve_simulator(scenario=FAST) as sim:
        clients = workers(sim)
        async with clients[0], clients[1], clients[2]:
            for number in (1, 2):
                clients[number].on_call(ledger.answering(number))
            for client in clients:
                await barrier(client)
            with anyio.fail_after(BOUND):
                injected = await inject(sim, 9)  # three wait in client 0's buffer
                await barrier(clients[0])
                assert len(clients[0].calls) == 3
                await clients[0].drain(timeout=BOUND)
                assert clients[0].calls == []
                seen = [call async for call in clients[0].inbound_calls()]
                await ledger.done.wait()
            assert seen == []  # the iteration ended: nothing was left for it
        check_each_answered_once(sim, ledger, injected)
        assert {number for number, _ in ledger.answered} == {1, 2}


async def test_drain_hangs_up_what_outlives_its_timeout() -> None:
    stuck = anyio.Event()
    async with (
        serve_simulator(scenario=FAST) as sim,
        make_client(sim, contexts=["office"]) as client,
    ):

        async def handle(call: Call) -> None:
            await call.answer()
            stuck.set()
            await call.wait_for_ended()  # never hangs up by itself

        client.on_call(handle)
        await barrier(client)
        (call_id,) = await inject(sim, 1)
        with anyio.fail_after(BOUND):
            await stuck.wait()
            await client.drain(timeout=0.2)
        assert client.calls == []
        (call,) = sim.all_calls()
        assert (call.call_id, call.end_reason) == (call_id, "hangup")
        assert sim.live_calls() == []


async def test_drain_on_exit_leaves_the_handlers_time_to_finish() -> None:
    ledger, hold = Ledger(3), anyio.Event()
    async with serve_simulator(scenario=FAST) as sim:
        client = make_client(sim, contexts=["office"], drain_on_exit=BOUND)
        other = make_client(sim, contexts=["office"])
        async with other:
            other.on_call(ledger.answering(1))
            async with client:
                client.on_call(ledger.answering(0, hold))
                await barrier(client)
                await barrier(other)
                with anyio.fail_after(BOUND):
                    injected = await inject(sim, 2)  # one each
                    await barrier(client)
                    assert len(client.calls) == 1
                    hold.set()  # released before the exit: the drain waits for it
            with anyio.fail_after(BOUND):
                injected += await inject(sim, 1)  # only the other one receives now
                await ledger.done.wait()
        check_each_answered_once(sim, ledger, injected)
        assert Counter(number for number, _ in ledger.answered) == {0: 1, 1: 2}


async def test_drain_and_overflow_options_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="inbound_overflow"):
        Limits(inbound_overflow="drop")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="drain_on_exit"):
        Timeouts(drain_on_exit=0)
    async with serve_simulator(scenario=FAST) as sim:
        async with make_client(sim) as client:
            with pytest.raises(ConfigurationError, match="timeout"):
                await client.drain(timeout=-1)
        with pytest.raises(RuntimeError):
            await client.drain(timeout=1)

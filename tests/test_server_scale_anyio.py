"""Many consumers over real sockets: three ``RelayClient``s on one context of one
``serve_simulator``, each answering the inbound calls it gets; the calls are spread over
them, each answered by exactly one, and none is left live. Runs on asyncio and trio.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable

import anyio
import pytest
from anyio_support import BOUND, FAST, A, B, barrier, make_client

from relay_anyio import Call, RelayClient, SimulatorServer, serve_simulator
from relay_proto import CallState

pytestmark = pytest.mark.anyio

CALLS = 30
Handler = Callable[[Call], Awaitable[None]]


class Workers:
    """Who handled which call, and an event once ``expected`` calls were answered."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.answered: list[tuple[int, str]] = []
        self.passed: list[str] = []
        self.done = anyio.Event()

    def answering(self, number: int) -> Handler:
        async def handle(call: Call) -> None:
            await call.answer()
            await call.hangup()
            self.answered.append((number, call.call_id))
            if len(self.answered) == self.expected:
                self.done.set()

        return handle

    def passing(self, client: RelayClient) -> Handler:
        async def handle(call: Call) -> None:
            params = {"node_id": call.node_id, "call_id": call.call_id}
            result = await client.execute("calling.pass", params)
            assert result["code"] == "200"
            self.passed.append(call.call_id)

        return handle


async def inject(sim: SimulatorServer, count: int) -> list[str]:
    return [
        await sim.inject_inbound_call(context="office", from_number=A, to_number=B)
        for _ in range(count)
    ]


def check_answered_once(sim: SimulatorServer, workers: Workers, injected: list[str]) -> None:
    handled = [call_id for _, call_id in workers.answered]
    assert sorted(handled) == sorted(injected)  # every call, each by exactly one worker
    assert sim.live_calls() == []
    ended = {call.call_id: call for call in sim.all_calls()}
    assert {ended[c].state for c in injected} == {CallState.ENDED}
    assert {ended[c].end_reason for c in injected} == {"hangup"}


async def test_three_workers_share_the_inbound_calls() -> None:
    workers = Workers(CALLS)
    async with serve_simulator(scenario=FAST) as sim:
        clients = [make_client(sim, contexts=["office"]) for _ in range(3)]
        async with clients[0], clients[1], clients[2]:
            for number, client in enumerate(clients):
                client.on_call(workers.answering(number))
                await barrier(client)
            with anyio.fail_after(BOUND):
                injected = await inject(sim, CALLS)
                await workers.done.wait()
            protocols = {c.call_id: c.protocol for c in sim.all_calls()}
            for number, call_id in workers.answered:  # the worker the call was offered to
                assert protocols[call_id] == clients[number].protocol
        check_answered_once(sim, workers, injected)
        assert Counter(number for number, _ in workers.answered) == {0: 10, 1: 10, 2: 10}


async def test_a_worker_that_passes_every_call_leaves_them_to_the_others() -> None:
    workers = Workers(CALLS)
    async with serve_simulator(scenario=FAST) as sim:
        clients = [make_client(sim, contexts=["office"]) for _ in range(3)]
        async with clients[0], clients[1], clients[2]:
            clients[0].on_call(workers.passing(clients[0]))
            for number in (1, 2):
                clients[number].on_call(workers.answering(number))
            for client in clients:
                await barrier(client)
            with anyio.fail_after(BOUND):
                injected = await inject(sim, CALLS)
                await workers.done.wait()
            passer = clients[0].protocol
        check_answered_once(sim, workers, injected)
        assert workers.passed  # it had its turns (a pass takes a turn of its own)
        assert set(workers.passed) <= set(injected)
        assert {number for number, _ in workers.answered} == {1, 2}
        owners = {c.call_id: c.protocol for c in sim.all_calls()}
        assert passer not in {owners[call_id] for call_id in injected}

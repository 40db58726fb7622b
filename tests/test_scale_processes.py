"""Three worker processes on one ``serve_simulator``, on asyncio and trio: the inbound
calls are spread over them, each answered by exactly one, none left live; one worker is
drained mid-load (a rolling restart) and loses no call: the calls in its handlers finish,
the new ones go to the others.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio_support import FAST, A, B

from relay_anyio import SimulatorServer, serve_simulator

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
WORKER = Path(__file__).resolve().parent / "scale_drain_worker.py"
#: Bound for the whole test: three interpreters start on a busy 2-core machine.
PROCESS_BOUND = 60.0


class Worker:
    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        assert process.stdout is not None
        self.lines = BufferedByteReceiveStream(process.stdout)
        self.answered: list[str] = []

    async def line(self) -> str:
        return (await self.lines.receive_until(b"\n", 1 << 16)).decode().strip()

    async def tell(self, text: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send(text.encode() + b"\n")

    async def collect(self, until: str | None, scope: anyio.CancelScope | None = None) -> None:
        """Collect ``answered`` lines until the line ``until`` (or cancelled via ``scope``
        once ``done`` says every call was answered)."""
        while True:
            line = await self.line()
            if line == until:
                return
            kind, _, call_id = line.partition(" ")
            assert kind == "answered", line
            self.answered.append(call_id)
            if scope is not None and self.done():
                scope.cancel()

    done: Callable[[], bool] = staticmethod(lambda: False)


async def start(sim: SimulatorServer, hold: bool) -> Worker:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, str(WORKER), sim.url, *(["hold"] if hold else [])]
    worker = Worker(await anyio.open_process(argv, env=env))
    assert await worker.line() == "ready"
    return worker


async def inject(sim: SimulatorServer, count: int) -> list[str]:
    return [
        await sim.inject_inbound_call(context="office", from_number=A, to_number=B)
        for _ in range(count)
    ]


async def test_a_worker_process_drained_mid_load_loses_no_call() -> None:
    async with serve_simulator(scenario=FAST) as sim:
        workers: list[Worker] = []
        injected: list[str] = []

        def done() -> bool:
            return sum(len(w.answered) for w in workers) >= len(injected)

        try:
            with anyio.fail_after(PROCESS_BOUND):
                workers.append(await start(sim, hold=True))
                workers += [await start(sim, hold=False) for _ in range(2)]
                injected += await inject(sim, 30)  # ten each; worker 0 holds its ten
                for _ in range(10):
                    assert (await workers[0].line()).startswith("took ")
                await workers[0].tell("drain")
                assert await workers[0].line() == "draining"
                injected += await inject(sim, 30)  # the others take them
                await workers[0].collect("drained")
                async with anyio.create_task_group() as tg:
                    for worker in workers[1:]:
                        worker.done = done
                        tg.start_soon(worker.collect, None, tg.cancel_scope)
                    if done():
                        tg.cancel_scope.cancel()
        finally:
            for worker in workers:
                if worker.process.returncode is None:
                    worker.process.kill()
                await worker.process.aclose()
        answered = [call_id for worker in workers for call_id in worker.answered]
        assert sorted(answered) == sorted(injected)  # each by exactly one worker
        assert sim.live_calls() == []
        counts = [len(worker.answered) for worker in workers]
        assert counts[0] == 10  # its held calls finished; nothing new reached it
        assert 20 <= counts[1] <= 30
        assert 20 <= counts[2] <= 30

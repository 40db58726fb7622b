"""Call lifecycle throughput through one connection: dial, play_and_collect, record, hangup.

One ``RelayClient`` keeps ``--concurrency`` calls in flight until ``--calls`` have
completed. Each call is ``dial()``, a ``play_and_collect`` of a short TTS prompt that the
far end answers with one digit (scripted), a ``record`` that the far end ends after
``--record-seconds`` with a terminator (scripted), then ``hangup()``; the digit and the
recording are checked. The simulator runs in a separate process (``relay serve``, started
with ``bench_dials.simulator_process``) with a scenario that makes every step immediate
(answer at once, a prompt of 1 ms, the digit at once), so the figures are about the
client, the wire and the simulator, not about simulated time.

Reported per backend, after a warm-up: calls/s and events/s (wall clock), the events the
client handled per call (every event its core reported through ``on_event``: call and
dial states, play, collect and record events; replies not counted), p50/p99 latency of a
whole call, client CPU per call (``time.process_time()`` of this process over the measured
part, divided by calls) and how busy each process was (CPU seconds per wall second). The
simulator's CPU comes from ``/proc/<pid>/stat`` where there is one.

Run: ``python benchmarks/bench_calls.py [--backend asyncio|trio|both] [--calls 2000]
[--concurrency 100] [--record-seconds 0]``. Loopback only; bounded by ``--timeout``.

Measured on the development machine (2 cores shared with other work, load average about
1.7, so calls/s and busy understate; us/call is the figure to compare), three rounds of
``python benchmarks/bench_calls.py --backend both --calls 1500 --warmup 300``:

    backend   calls  calls/s  events/s  ev/call   p50 ms   p99 ms  us/call  busy  sim us/call  busy
    asyncio    1500    1,522    16,737       11     66.2     77.8      433  0.66          213  0.32
    trio       1500    1,354    14,897       11     68.2    135.1      419  0.57          200  0.27
    asyncio    1500    1,563    17,197       11     60.9     86.0      398  0.62          193  0.30
    trio       1500    1,138    12,513       11     79.3    139.3      405  0.46          193  0.22
    asyncio    1500    2,000    22,001       11     49.4     61.8      325  0.65          160  0.32
    trio       1500    1,052    11,567       11    102.7    161.9      392  0.41          200  0.21

A call (11 events, 4 requests) costs the client about 0.33-0.43 ms of CPU on either
backend, some 30-40 us per event handled, about twice the simulator's cost, so the client
bounds the throughput: with a core each, some 2,300-3,000 calls/s (25,000-33,000 events/s)
through one connection. Under a load average of 2 to 3 the same run measured 680-840 us per
call: compare figures taken side by side only.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import anyio
from bench_dials import DEVICES, Server, simulator_process

from relay_anyio import CollectResult, RecordResult, RelayClient
from relay_proto import Event, RequestFailed, RequestSucceeded

PROMPT = [{"type": "tts", "params": {"text": "Press one"}}]
COLLECT = {"digits": {"max": 1}, "initial_timeout": 5}
AUDIO = {"terminators": "#", "end_silence_timeout": 1}


def scenario(record_seconds: float) -> dict[str, Any]:
    """Every step immediate: answer at once, a 1 ms prompt, the digit ``1`` at once, and a
    recording the far end ends with a terminator after ``record_seconds``."""
    far_end = {
        "outcome": "answer",
        "after": 0,
        "input": {"digits": "1", "after": 0, "interval": 0},
        "record": {"seconds": record_seconds, "end": "terminator"},
    }
    return {"default": far_end, "play_seconds_per_char": 0, "min_play_seconds": 0.001}


@dataclass
class Counter:
    """The ``on_event`` hook: counts the events the client's core reported (not replies)."""

    events: int = 0

    def __call__(self, event: Event) -> None:
        if not isinstance(event, RequestSucceeded | RequestFailed):
            self.events += 1


@dataclass
class Result:
    backend: str
    calls: int
    events: int
    wall: float
    cpu: float
    server_cpu: float | None
    latencies: list[float] = field(default_factory=list)

    def line(self) -> str:
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, round(p * (len(lat) - 1)))] * 1e3

        server = f"{'-':>13}{'-':>6}"
        if self.server_cpu is not None:
            per_call = self.server_cpu / self.calls * 1e6
            server = f"{per_call:>13.0f}{self.server_cpu / self.wall:>6.2f}"
        return (
            f"{self.backend:<8}{self.calls:>7}{self.calls / self.wall:>9,.0f}"
            f"{self.events / self.wall:>10,.0f}{self.events / self.calls:>9.0f}"
            f"{pct(0.5):>9.1f}{pct(0.99):>9.1f}"
            f"{self.cpu / self.calls * 1e6:>9.0f}{self.cpu / self.wall:>6.2f}{server}"
        )


HEADER = (
    f"{'backend':<8}{'calls':>7}{'calls/s':>9}{'events/s':>10}{'ev/call':>9}"
    f"{'p50 ms':>9}{'p99 ms':>9}{'us/call':>9}{'busy':>6}{'sim us/call':>13}{'busy':>6}"
)


async def one_call(client: RelayClient) -> None:
    call = await client.dial(DEVICES)
    collect = await call.play_and_collect(PROMPT, COLLECT)
    heard = await collect.wait()
    if not isinstance(heard, CollectResult) or heard.digits != "1":
        raise RuntimeError(f"expected the digit 1, got {heard!r}")
    recording = await call.record(AUDIO)
    recorded = await recording.wait()
    if not isinstance(recorded, RecordResult) or recorded.url is None:
        raise RuntimeError(f"expected a recording, got {recorded!r}")
    await call.hangup()


async def many_calls(
    client: RelayClient, total: int, concurrency: int, latencies: list[float] | None
) -> None:
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            await one_call(client)
            if latencies is not None:
                latencies.append(time.perf_counter() - start)

    async with anyio.create_task_group() as tg:
        for _ in range(min(concurrency, total)):
            tg.start_soon(worker)


async def bounded(seconds: float, job: Callable[[], Awaitable[Result]]) -> Result:
    """Run ``job``; give up (TimeoutError) after ``seconds``."""
    with anyio.fail_after(seconds):
        return await job()


async def run_client(
    server: Server, backend: str, *, calls: int, warmup: int, concurrency: int
) -> Result:
    counter = Counter()
    client = RelayClient(project="bench", token="bench-token", url=server.url, on_event=counter)
    async with client:
        await many_calls(client, warmup, concurrency, None)
        gc.collect()
        result = Result(backend, calls, 0, 0.0, 0.0, None)
        server_cpu, events = server.cpu_seconds(), counter.events
        cpu, wall = time.process_time(), time.perf_counter()
        await many_calls(client, calls, concurrency, result.latencies)
        result.wall = time.perf_counter() - wall
        result.cpu = time.process_time() - cpu
        result.events = counter.events - events
        server_after = server.cpu_seconds()
    if server_cpu is not None and server_after is not None:
        result.server_cpu = server_after - server_cpu
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("asyncio", "trio", "both"), default="both")
    parser.add_argument("--calls", type=int, default=2000, help="measured calls (default 2000)")
    parser.add_argument("--warmup", type=int, default=300, help="calls before measuring")
    parser.add_argument("--concurrency", type=int, default=100, help="calls in flight")
    parser.add_argument(
        "--record-seconds", type=float, default=0.0, help="seconds the far end talks"
    )
    parser.add_argument(
        "--server-backend", choices=("asyncio", "trio"), default="asyncio", help="simulator loop"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after S seconds")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.warmup < 0 or args.concurrency < 1 or args.record_seconds < 0:
        parser.error("--calls and --concurrency must be >= 1, --warmup and --record-seconds >= 0")

    backends = ("asyncio", "trio") if args.backend == "both" else (args.backend,)
    print(
        f"RelayClient call lifecycle over loopback: {args.concurrency} in flight, dial + "
        f"play_and_collect + record ({args.record_seconds:g} s) + hangup, "
        f"simulator ({args.server_backend}) in its own process"
    )
    print(HEADER)
    for backend in backends:
        sim_scenario = scenario(args.record_seconds)
        with simulator_process(0.0, args.server_backend, sim_scenario) as server:
            job = partial(
                run_client,
                server,
                backend,
                calls=args.calls,
                warmup=args.warmup,
                concurrency=args.concurrency,
            )
            result = anyio.run(bounded, args.timeout, job, backend=backend)
        print(result.line(), flush=True)
    print(
        "us/call: CPU time of that process per call; busy: its CPU seconds per wall second "
        "(~1.0: that process is the bottleneck); ev/call: events the client handled per call"
    )
    cpus, load = os.cpu_count() or 1, os.getloadavg()[0]
    if load > cpus - 1:
        print(
            f"note: load average {load:.1f} on {cpus} CPUs: other processes compete, so "
            f"calls/s and busy understate; us/call is the figure to compare"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

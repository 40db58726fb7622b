"""End-to-end dial throughput over real loopback sockets: RelayClient vs the simulator.

The simulator runs in a separate process (``python -m relay_anyio serve``) with a scenario
whose default outcome answers at once, so the client process's CPU time is the client's
alone. On the chosen backend(s), ``RelayClient`` keeps ``--concurrency`` dials in flight
until ``--dials`` have completed; each dial is ``dial()`` then ``call.hangup()``.

Reported per backend, after a warm-up: dials/s (wall clock), p50/p99 latency of the
``dial()`` call, client CPU per dial (``time.process_time()`` of this process over the
measured part, divided by dials) and how busy each process was (CPU seconds per wall
second: about 1.0 means that process is the bottleneck). The simulator's CPU comes from
``/proc/<pid>/stat`` where there is one. ``of sys`` is the part of the client's CPU spent in
the kernel (mostly socket calls, which on loopback include the peer's TCP work): it varies
most from run to run, so compare the user part (``us/dial`` minus ``of sys``) too.

Run: ``python benchmarks/bench_dials.py [--backend asyncio|trio|both] [--dials 5000]
[--concurrency 200] [--profile]``. Loopback only; everything is bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import selectors
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio

from relay_anyio import RelayClient

DEVICES: list[list[dict[str, Any]]] = [
    [
        {
            "type": "phone",
            "params": {"to_number": "+15550000002", "from_number": "+15550000001"},
        }
    ]
]

SERVER_START_TIMEOUT = 15.0
SERVER_STOP_TIMEOUT = 5.0


# ------------------------------------------------------------------ the simulator process


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the simulator process so far (Linux ``/proc``), else None."""
        try:
            with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as handle:
                fields = handle.read().rpartition(")")[2].split()
        except OSError:
            return None
        # After the ")" that closes the command name, utime and stime are fields 12 and 13.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _read_line(stream: Any, timeout: float) -> str:
    """One line from a subprocess pipe, or TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise TimeoutError(f"no URL from the simulator within {timeout:g} s")
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"the simulator exited before printing its URL: {data!r}")
            data += chunk
    return data.decode().strip()


@contextmanager
def simulator_process(
    after: float, backend: str, scenario: dict[str, Any] | None = None
) -> Iterator[Server]:
    """Start ``relay_anyio serve`` on a free loopback port; stop it on exit, bounded.
    The scenario answers every call after ``after`` seconds, unless one is given."""
    scenario = scenario or {"default": {"outcome": "answer", "after": after}}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(scenario, handle)
        path = handle.name
    command = [sys.executable, "-m", "relay_anyio", "--backend", backend, "serve"]
    command += ["--listen", "127.0.0.1:0", "--scenario", path]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        assert process.stdout is not None
        url = _read_line(process.stdout, SERVER_START_TIMEOUT).splitlines()[-1]
        if not url.startswith("ws://"):
            raise RuntimeError(f"unexpected line from the simulator: {url!r}")
        yield Server(process, url)
    finally:
        process.terminate()
        try:
            process.wait(SERVER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(SERVER_STOP_TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()
        os.unlink(path)


# ------------------------------------------------------------------ the client side


@dataclass
class Result:
    backend: str
    dials: int
    wall: float
    cpu: float
    server_cpu: float | None
    #: Of ``cpu``, the part spent in the kernel (socket calls; the noisiest part).
    system: float
    latencies: list[float]

    def line(self) -> str:
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, round(p * (len(lat) - 1)))] * 1e3

        if self.server_cpu is None:
            server = f"{'-':>9}{'-':>7}"
        else:
            server = (
                f"{self.server_cpu / self.dials * 1e6:>9.0f}{self.server_cpu / self.wall:>7.2f}"
            )
        return (
            f"{self.backend:<8}{self.dials:>6}{self.dials / self.wall:>9,.0f}"
            f"{pct(0.5):>8.1f}{pct(0.99):>8.1f}"
            f"{self.cpu / self.dials * 1e6:>9.0f}{self.system / self.dials * 1e6:>7.0f}"
            f"{self.cpu / self.wall:>7.2f}{server}"
        )

    def ceiling(self) -> str:
        """Which process limits throughput when each has a core of its own."""
        client = self.dials / self.cpu
        if self.server_cpu is None or self.server_cpu <= 0:
            return f"{self.backend}: the client alone could do ~{client:,.0f} dials/s per core"
        server = self.dials / self.server_cpu
        bound = "client" if client <= server else "simulator"
        return (
            f"{self.backend}: with a core each, ~{min(client, server):,.0f} dials/s, "
            f"{bound}-bound (client ~{client:,.0f}/s, simulator ~{server:,.0f}/s per core)"
        )


HEADER = (
    f"{'':<8}{'':>6}{'':>9}{'latency ms':>16}{'client':>23}{'simulator':>16}\n"
    f"{'backend':<8}{'dials':>6}{'dials/s':>9}{'p50':>8}{'p99':>8}"
    f"{'us/dial':>9}{'of sys':>7}{'busy':>7}{'us/dial':>9}{'busy':>7}"
)


async def _dial_many(
    client: RelayClient, total: int, concurrency: int, latencies: list[float] | None
) -> None:
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            call = await client.dial(DEVICES)
            if latencies is not None:
                latencies.append(time.perf_counter() - start)
            await call.hangup()

    async with anyio.create_task_group() as tg:
        for _ in range(min(concurrency, total)):
            tg.start_soon(worker)


async def run_bounded(seconds: float, job: Callable[[], Awaitable[Result]]) -> Result:
    """Run ``job``; give up (TimeoutError) after ``seconds``."""
    with anyio.fail_after(seconds):
        return await job()


async def run_client(
    server: Server,
    backend: str,
    *,
    dials: int,
    warmup: int,
    concurrency: int,
    profiler: cProfile.Profile | None,
) -> Result:
    async with RelayClient(project="bench", token="bench-token", url=server.url) as client:
        await _dial_many(client, warmup, concurrency, None)
        gc.collect()
        latencies: list[float] = []
        server_cpu = server.cpu_seconds()
        cpu, wall, system = time.process_time(), time.perf_counter(), os.times().system
        if profiler is not None:
            profiler.enable()
        try:
            await _dial_many(client, dials, concurrency, latencies)
        finally:
            if profiler is not None:
                profiler.disable()
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
        system = os.times().system - system
        server_after = server.cpu_seconds()
    sim = None if server_cpu is None or server_after is None else server_after - server_cpu
    return Result(backend, dials, wall, cpu, sim, system, latencies)


# ------------------------------------------------------------------ profile summary

_AREAS = (
    ("/relay_proto/", "relay_proto core (json excluded)"),
    ("/json/", "stdlib json"),
    ("/relay_anyio/_fram", "relay_anyio frame codec"),
    ("/relay_anyio/", "relay_anyio adapter"),
    ("/anyio/", "anyio"),
    ("/sniffio/", "anyio"),
    ("/asyncio/", "asyncio event loop"),
    ("selectors.py", "asyncio event loop"),
    ("/trio/", "trio"),
    ("/outcome/", "trio"),
    ("/wsproto/", "wsproto"),
    ("bench_dials.py", "benchmark workers"),
)
_WAIT = "poller wait (idle, not CPU)"


def _area(func: tuple[str, int, str]) -> str | None:
    filename, _line, name = func
    if filename == "~":
        if "poll" in name or "select" in name:
            return _WAIT
        if "_socket.socket" in name:
            return "socket syscalls"
        return None  # charged to its callers' areas
    for needle, area in _AREAS:
        if needle in filename:
            return area
    return None  # other stdlib Python (enum, abc, dataclasses...): charged to its callers


def print_areas(stats: pstats.Stats) -> None:
    """Own time grouped by area; C built-ins and other stdlib helpers (enum, abc...) are
    charged to the areas that called them."""
    totals: dict[str, float] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for func, (_cc, _nc, tottime, _ct, callers) in raw.items():
        area = _area(func)
        if area is not None:
            totals[area] = totals.get(area, 0.0) + tottime
            continue
        for caller, edge in callers.items():
            caller_area = _area(caller) or "other Python"
            totals[caller_area] = totals.get(caller_area, 0.0) + edge[2]
    busy = sum(t for area, t in totals.items() if area != _WAIT) or 1.0
    print("own time by area (helpers charged to their callers), % of non-idle time:")
    for area, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        share = "" if area == _WAIT else f"{seconds / busy * 100:6.1f}%"
        print(f"  {area:<36}{seconds:8.3f} s {share}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("asyncio", "trio", "both"), default="both")
    parser.add_argument("--dials", type=int, default=5000, help="measured dials (default 5000)")
    parser.add_argument("--warmup", type=int, default=1000, help="dials before measuring")
    parser.add_argument("--concurrency", type=int, default=200, help="dials in flight")
    parser.add_argument(
        "--after", type=float, default=0.0, help="seconds each call rings before answering"
    )
    parser.add_argument(
        "--server-backend", choices=("asyncio", "trio"), default="asyncio", help="simulator loop"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="give up after S seconds")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the client (top 30 by tottime)"
    )
    args = parser.parse_args(argv)
    if args.dials < 1 or args.warmup < 0 or args.concurrency < 1 or args.after < 0:
        parser.error("--dials and --concurrency must be >= 1, --warmup and --after >= 0")

    backends = ("asyncio", "trio") if args.backend == "both" else (args.backend,)
    print(
        f"RelayClient end to end over loopback: {args.concurrency} in flight, "
        f"dial + hangup, simulator ({args.server_backend}) in its own process, "
        f"answer after {args.after:g} s"
    )
    print(HEADER)
    results: list[Result] = []
    for backend in backends:
        profiler = cProfile.Profile() if args.profile else None
        with simulator_process(args.after, args.server_backend) as server:
            job = partial(
                run_client,
                server,
                backend,
                dials=args.dials,
                warmup=args.warmup,
                concurrency=args.concurrency,
                profiler=profiler,
            )
            result = anyio.run(run_bounded, args.timeout, job, backend=backend)
        print(result.line(), flush=True)
        results.append(result)
        if profiler is not None:
            print(f"\nclient profile ({backend}), top 30 by tottime:")
            stats = pstats.Stats(profiler, stream=sys.stdout)
            stats.sort_stats(pstats.SortKey.TIME).print_stats(30)
            print_areas(stats)
    print(
        "us/dial: CPU time of that process per dial; busy: its CPU seconds per wall second "
        "(~1.0: that process is the bottleneck; with a core each, the larger us/dial is)"
    )
    for result in results:
        print(result.ceiling())
    cpus = os.cpu_count() or 1
    load = os.getloadavg()[0]
    if load > cpus - 1:
        print(
            f"note: load average {load:.1f} on {cpus} CPUs: other processes compete, so "
            f"dials/s and busy understate; us/dial is the figure to compare"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

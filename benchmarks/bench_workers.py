"""Many worker processes on one simulator process: inbound calls handled per second with
1, 2 and 3 workers, and the campaign example's dials per second with 1 and 2 workers.

The simulator runs as ``relay serve --control PORT`` (its own process, answering at once);
the inbound calls are injected through its control socket, ``--calls`` per round, and a
round ends when every one of them has ended (each worker answers and hangs up the calls
it is offered). The campaign round runs ``examples/campaign.py``'s ``run_campaign`` with
``--numbers`` numbers and ``--in-flight`` dials in flight per worker; its time includes
starting the worker processes (about 0.3 s each on the reference machine).

Run: ``python benchmarks/bench_workers.py [--calls 1500] [--numbers 1500] [--in-flight 50]``.
Loopback only; every round is bounded by ``--timeout``.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from relay_anyio import Call, RelayClient

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}
SCENARIO = {"default": {"outcome": "answer", "after": 0.0}}


async def worker(url: str) -> None:
    """A worker process: answer and hang up every call offered on ``office`` (handlers are
    not the limit here: a burst of calls must not overflow into passes)."""

    async def handle(call: Call) -> None:
        await call.answer()
        await call.hangup()

    async with RelayClient(
        project="p", token="t", url=url, contexts=["office"], max_handlers=10_000
    ) as client:
        client.on_call(handle)
        await client.ping()
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)


def ask(control: socket.socket, request: dict[str, Any]) -> dict[str, Any]:
    control.sendall(json.dumps(request).encode() + b"\n")
    answer = b""
    while not answer.endswith(b"\n"):
        chunk = control.recv(1 << 20)
        if not chunk:
            raise RuntimeError("the control socket closed")
        answer += chunk
    result: dict[str, Any] = json.loads(answer)
    return result


def ended(control: socket.socket) -> int:
    return int(ask(control, {"op": "stats"})["states"].get("ended", 0))


def inbound_round(
    url: str, control: socket.socket, workers: int, calls: int, timeout: float
) -> float:
    """Calls handled per second by ``workers`` worker processes."""
    argv = [sys.executable, __file__, "--worker", url]
    procs = [
        subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV)
        for _ in range(workers)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise RuntimeError("a worker did not start")
        before = ended(control)
        started = time.perf_counter()
        request = {"op": "call", "context": "office", "from": "+15551230000", "to": "+15550000001"}
        ask(control, {**request, "count": calls})
        while ended(control) - before < calls:
            if time.perf_counter() - started > timeout:
                raise RuntimeError("the round did not finish in time")
            time.sleep(0.01)  # polling the simulator's stats, not synchronising a test
        return calls / (time.perf_counter() - started)
    finally:
        for proc in procs:
            proc.communicate("stop\n", timeout=10)


def campaign_round(url: str, workers: int, numbers: int, in_flight: int) -> float:
    """The campaign example's dials per second with ``workers`` processes."""
    example = runpy.run_path(str(ROOT / "examples" / "campaign.py"), run_name="campaign")
    items = example["numbers"](numbers)
    started = time.perf_counter()
    results = anyio.run(
        lambda: example["run_campaign"](
            url, items, workers=workers, in_flight=in_flight, quiet=True
        )
    )
    elapsed = time.perf_counter() - started
    assert len(results) == numbers
    return numbers / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1500)
    parser.add_argument("--numbers", type=int, default=1500)
    parser.add_argument("--in-flight", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        anyio.run(worker, args.worker)
        return
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as scenario:
        json.dump(SCENARIO, scenario)
    serve = [sys.executable, "-m", "relay_anyio", "serve", "--listen", "127.0.0.1:0"]
    serve += ["--control", "0", "--scenario", scenario.name]
    sim = subprocess.Popen(serve, stdout=subprocess.PIPE, text=True, env=ENV)
    try:
        assert sim.stdout is not None
        url = sim.stdout.readline().strip()
        host, _, port = sim.stdout.readline().strip().removeprefix("control ").rpartition(":")
        with socket.create_connection((host, int(port))) as control:
            cpus = os.cpu_count()
            print(f"inbound: {args.calls} calls per round, one simulator process, {cpus} CPUs")
            print("| workers | calls/s |\n|---|---|")
            for workers in (1, 2, 3):
                rate = inbound_round(url, control, workers, args.calls, args.timeout)
                print(f"| {workers} | {rate:,.0f} |", flush=True)
        print(f"\ncampaign: {args.numbers} numbers, {args.in_flight} dials in flight per worker")
        print("| workers | dials/s |\n|---|---|")
        for workers in (1, 2):
            rate = campaign_round(url, workers, args.numbers, args.in_flight)
            print(f"| {workers} | {rate:,.0f} |", flush=True)
    finally:
        sim.terminate()
        sim.wait(timeout=10)
        os.unlink(scenario.name)


if __name__ == "__main__":
    main()

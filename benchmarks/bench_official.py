"""Baseline: the official SignalWire SDK's dial throughput against our simulator.

Runs only where the official SDK (``signalwire-sdk``) is installed: ``make bench-official``
builds ``.venv-interop`` and runs this there. The SDK is never a dependency of the project.

What it measures: one official ``RelayClient`` (asyncio) places ``--dials`` calls with at most
``--concurrency`` in flight; each is ``dial`` (resolved on the ``calling.call.dial``
``answered`` event) → ``hangup`` → wait for ``ended``. The simulator runs from the command
line in a separate process (``python -m relay_anyio serve``) and answers at once
(``after: 0``), so the numbers are about the client and the wire, not about ring time.
Reported: dials/s (wall clock over the measured phase), client CPU per dial
(``time.process_time()`` of this process / dials), dial latency percentiles, and the
simulator's CPU (from /proc) to show whether the simulator was the bottleneck.

Pointing the SDK at ws://: it always dials ``wss://{host}``; the ``websockets`` name inside
``signalwire.relay.client`` is replaced by a shim that rewrites the scheme to ``ws://``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from pathlib import Path
from typing import Any

FROM = "+15550000001"
TO = "+15550000002"
PROJECT = "bench-project"
TOKEN = "bench-token"


def _load_sdk() -> tuple[Any, Any]:
    try:
        sw_client = importlib.import_module("signalwire.relay.client")
        websockets = importlib.import_module("websockets")
    except ImportError:
        sys.exit(
            "bench_official: the official SignalWire SDK (pip package `signalwire-sdk`) is not "
            "installed in this interpreter. Run `make bench-official` (it builds .venv-interop)."
        )
    if not hasattr(sw_client, "RelayClient"):
        sys.exit("bench_official: `signalwire` here is not signalwire-sdk 3.x (no RelayClient).")
    return sw_client, websockets


def _point_at_plain_ws(sw_client: Any, websockets: Any) -> None:
    async def connect(uri: str, **kwargs: Any) -> Any:
        kwargs.pop("ssl", None)
        return await websockets.connect("ws://" + uri.removeprefix("wss://"), **kwargs)

    sw_client.websockets = types.SimpleNamespace(connect=connect, exceptions=websockets.exceptions)


def _cpu_seconds_of(pid: int) -> float | None:
    """utime + stime of another process, from /proc (None where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_simulator(workdir: Path, timeout: float) -> tuple[subprocess.Popen[str], str]:
    scenario = workdir / "scenario.json"
    scenario.write_text(json.dumps({"default": {"outcome": "answer", "after": 0}}))
    command = [sys.executable, "-m", "relay_anyio", "serve", "--listen", "127.0.0.1:0"]
    command += ["--project", PROJECT, "--token", TOKEN, "--scenario", str(scenario)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    stdout = proc.stdout
    assert stdout is not None
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not box or not box[0].startswith("ws://"):
        proc.kill()
        proc.wait(timeout=5)
        sys.exit(f"bench_official: the simulator did not print its URL within {timeout} s")
    return proc, box[0].strip()


async def _run(
    sw_client: Any, url: str, dials: int, concurrency: int, warmup: int
) -> dict[str, Any]:
    client = sw_client.RelayClient(project=PROJECT, token=TOKEN, host=url.removeprefix("ws://"))
    device = {"type": "phone", "params": {"to_number": TO, "from_number": FROM, "timeout": 30}}
    latencies: list[float] = []
    failures: list[str] = []

    async def one(gate: asyncio.Semaphore, record: bool) -> None:
        async with gate:
            started = time.perf_counter()
            try:
                call = await client.dial([[device]], dial_timeout=30)
                if record:
                    latencies.append(time.perf_counter() - started)
                await call.hangup()
                await call.wait_for_ended(timeout=30)
            except Exception as exc:
                failures.append(f"{type(exc).__name__}: {exc}")

    await client.connect()
    try:
        gate = asyncio.Semaphore(concurrency)
        await asyncio.gather(*(one(gate, False) for _ in range(warmup)))
        failures.clear()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(one(gate, True) for _ in range(dials)))
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        await client.disconnect()
    latencies.sort()

    def pct(p: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else 0
        )

    return {
        "dials": dials,
        "concurrency": concurrency,
        "failures": len(failures),
        "first_failures": failures[:3],
        "wall_s": round(wall, 3),
        "dials_per_s": round(dials / wall, 1),
        "client_cpu_s": round(cpu, 3),
        "client_cpu_ms_per_dial": round(cpu / dials * 1000, 3),
        "dial_latency_ms": {
            "p50": round(pct(0.50), 2),
            "p99": round(pct(0.99), 2),
            "mean": round(statistics.fmean(latencies) * 1000, 2) if latencies else 0,
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dials", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=120.0, help="whole run, seconds")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args()
    if not 0 < args.dials <= 100_000 or not 0 < args.concurrency <= 1000:
        parser.error("--dials must be 1..100000 and --concurrency 1..1000")

    sw_client, websockets = _load_sdk()
    _point_at_plain_ws(sw_client, websockets)
    sdk_version = importlib.import_module("signalwire").__version__
    with tempfile.TemporaryDirectory() as workdir:
        proc, url = _start_simulator(Path(workdir), timeout=15)
        try:
            sim_cpu0 = _cpu_seconds_of(proc.pid)
            coro = _run(sw_client, url, args.dials, args.concurrency, args.warmup)
            result = asyncio.run(asyncio.wait_for(coro, args.timeout))
            sim_cpu1 = _cpu_seconds_of(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
    result["sdk"] = f"signalwire-sdk {sdk_version}"
    result["python"] = sys.version.split()[0]
    if sim_cpu0 is not None and sim_cpu1 is not None:
        # includes the warm-up dials: an upper bound for the measured phase
        result["simulator_cpu_s_incl_warmup"] = round(sim_cpu1 - sim_cpu0, 3)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"official {result['sdk']} vs our simulator (separate process), "
            f"Python {result['python']}"
        )
        print(
            f"  {args.dials} dials (dial -> hangup -> ended), {args.concurrency} in flight, "
            f"{args.warmup} warm-up dials not counted"
        )
        print(f"  dials/s:              {result['dials_per_s']}")
        print(f"  client CPU per dial:  {result['client_cpu_ms_per_dial']} ms")
        lat = result["dial_latency_ms"]
        print(f"  dial latency ms:      p50 {lat['p50']}  p99 {lat['p99']}  mean {lat['mean']}")
        if "simulator_cpu_s_incl_warmup" in result:
            print(
                f"  simulator CPU:        {result['simulator_cpu_s_incl_warmup']} s "
                f"(incl. warm-up) over {result['wall_s']} s wall"
            )
        print(f"  failures:             {result['failures']} {result['first_failures'] or ''}")
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""An outbound campaign sharded over worker processes: each worker dials its share of a
list of numbers with a bounded number of dials in flight, hangs up every answered call,
and reports one JSON line per number; the parent shows progress and gathers the results.

    python examples/campaign.py [--numbers 200] [--workers 2] [--in-flight 20] [--url URL]

Without ``--url`` it starts a simulator in the parent process (numbers ending in 7 are
busy, the others answer after 50 ms) and the workers dial it; with ``--url`` (and
SIGNALWIRE_PROJECT_ID / SIGNALWIRE_API_TOKEN) they dial that server. Sharding needs no
coordination: worker ``i`` of ``n`` takes the numbers at positions ``i, i+n, ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from anyio.streams.buffered import BufferedByteReceiveStream

from relay_anyio import DialFailedError, DialTimeoutError, RelayClient, serve_simulator

FROM_NUMBER = "+15551230000"
RING_SECONDS = 20
#: The embedded simulator: numbers ending in 7 are busy, the others answer after 50 ms.
SCENARIO: dict[str, Any] = {
    "default": {"outcome": "answer", "after": 0.05},
    "destinations": {f"+1555200{n:04d}": {"outcome": "busy"} for n in range(7, 10_000, 10)},
}
ROOT = Path(__file__).resolve().parent.parent


def numbers(count: int) -> list[str]:
    """``count`` numbers of the campaign (the embedded simulator's plan covers 10 000)."""
    return [f"+1555200{n:04d}" for n in range(count)]


def shard(items: Sequence[str], index: int, workers: int) -> list[str]:
    """Worker ``index``'s share: every ``workers``-th item from position ``index``."""
    return list(items[index::workers])


# ---------------------------------------------------------------------------- a worker


async def call_one(client: RelayClient, number: str) -> dict[str, Any]:
    """Dial ``number``; hang up if it answers. One result line's content."""
    started = anyio.current_time()
    device = {"type": "phone", "params": {"to_number": number, "from_number": FROM_NUMBER}}
    try:
        call = await client.dial([[device]], dial_timeout=RING_SECONDS + 5.0)
    except DialTimeoutError:
        outcome = "no_answer"
    except DialFailedError as exc:
        outcome = exc.legs[0].end_reason if exc.legs and exc.legs[0].end_reason else "failed"
    else:
        await call.hangup()
        outcome = "answered"
    return {"number": number, "outcome": outcome, "seconds": anyio.current_time() - started}


async def work(url: str, batch: list[str], in_flight: int) -> None:
    """Dial ``batch`` with at most ``in_flight`` dials at once; print one JSON line each."""
    project = os.environ.get("SIGNALWIRE_PROJECT_ID", "campaign")
    token = os.environ.get("SIGNALWIRE_API_TOKEN", "campaign")
    limiter = anyio.CapacityLimiter(in_flight)

    async def one(number: str) -> None:
        async with limiter:
            result = await call_one(client, number)
        print(json.dumps(result), flush=True)

    async with (
        RelayClient(project=project, token=token, url=url) as client,
        anyio.create_task_group() as tg,
    ):
        for number in batch:
            tg.start_soon(one, number)


# ---------------------------------------------------------------------------- the parent


async def run_campaign(
    url: str, items: Sequence[str], *, workers: int, in_flight: int, quiet: bool = False
) -> dict[str, str]:
    """Run the campaign over ``workers`` processes; return ``{number: outcome}``."""
    results: dict[str, str] = {}
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    async def run_worker(index: int) -> None:
        batch = shard(items, index, workers)
        argv = [sys.executable, __file__, "--worker", url, "--in-flight", str(in_flight)]
        async with await anyio.open_process(argv, env=env, stderr=None) as process:
            assert process.stdin is not None
            assert process.stdout is not None
            await process.stdin.send(json.dumps(batch).encode() + b"\n")
            await process.stdin.aclose()
            lines = BufferedByteReceiveStream(process.stdout)
            for _ in batch:
                result = json.loads(await lines.receive_until(b"\n", 1 << 16))
                results[result["number"]] = result["outcome"]
                if not quiet and len(results) % max(1, len(items) // 10) == 0:
                    print(f"progress {len(results)}/{len(items)}", file=sys.stderr)
            if await process.wait() != 0:
                raise RuntimeError(f"worker {index} exited with {process.returncode}")

    async with anyio.create_task_group() as tg:
        for index in range(workers):
            tg.start_soon(run_worker, index)
    return results


async def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--numbers", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--in-flight", type=int, default=20)
    parser.add_argument("--url", default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:  # a worker process: its shard comes on stdin
        batch = json.loads(await anyio.to_thread.run_sync(sys.stdin.readline))
        await work(args.worker, batch, args.in_flight)
        return
    items = numbers(args.numbers)
    started = time.perf_counter()
    if args.url is not None:
        results = await run_campaign(
            args.url, items, workers=args.workers, in_flight=args.in_flight
        )
    else:
        async with serve_simulator(scenario=SCENARIO) as sim:
            results = await run_campaign(
                sim.url, items, workers=args.workers, in_flight=args.in_flight
            )
    elapsed = time.perf_counter() - started
    summary = dict(sorted(Counter(results.values()).items()))
    print(f"{len(results)} numbers, {args.workers} workers, {elapsed:.2f} s: {summary}")


if __name__ == "__main__":
    anyio.run(main)

"""Client CPU per dial as instruction counts: ours and the official SDK's, side by side.

Wall-clock figures on a shared machine move by tens of percent from one run to the next;
instruction counts do not. This runs the client process under ``valgrind --tool=callgrind``
(the simulator, a child process, is not traced) twice per client, with ``--small`` and
``--large`` dials (200 in flight, after the same warm-up), and reports the difference
divided by the extra dials: the instructions one dial costs the client, connection set-up
and imports cancelled out. Ours runs on asyncio and on trio; the official SDK (asyncio
only) where ``.venv-interop`` has it (``make interop`` builds it).

Run: ``python benchmarks/bench_instructions.py [--small 200] [--large 1200]``. Needs valgrind.
Instructions are not seconds (memory stalls, system calls and the event loop's waits are
not in them), but they compare two Python clients on the same interpreter fairly.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).absolute().parent.parent
INTEROP_PYTHON = ROOT / ".venv-interop" / "bin" / "python"

#: What each traced process runs: ``{dials}`` dials after a 200-dial warm-up, 200 in flight.
OURS = """
import sys, anyio
sys.path.insert(0, {bench!r})
import bench_dials as b
from relay_anyio import RelayClient
async def main(url):
    async with RelayClient(project="bench", token="bench-token", url=url) as client:
        await b._dial_many(client, 200, 200, None)
        await b._dial_many(client, {dials}, 200, None)
with b.simulator_process(0.0, "asyncio") as server:
    anyio.run(main, server.url, backend={backend!r})
"""
OFFICIAL = """
import sys, asyncio, tempfile
from pathlib import Path
sys.path.insert(0, {bench!r})
import bench_official as b
sw_client, websockets = b._load_sdk()
b._point_at_plain_ws(sw_client, websockets)
with tempfile.TemporaryDirectory() as d:
    process, url = b._start_simulator(Path(d), 30.0)
    try:
        asyncio.run(b._run(sw_client, url, {dials}, 200, 200))
    finally:
        process.terminate()
        process.wait(10)
"""


def instructions(python: str, script: str, timeout: float) -> int:
    """Instructions of one traced run of ``script`` with ``python``."""
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    command += [python, "-c", script]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or found is None:
        raise RuntimeError(f"the traced run failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_dial(python: str, template: str, small: int, large: int, **fields: str) -> float:
    bench = str(ROOT / "benchmarks")
    runs = [
        instructions(python, template.format(bench=bench, dials=n, **fields), timeout=900)
        for n in (small, large)
    ]
    return (runs[1] - runs[0]) / (large - small)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=200, help="dials of the short run")
    parser.add_argument("--large", type=int, default=1200, help="dials of the long run")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed")
    if not 0 <= args.small < args.large:
        parser.error("--small must be >= 0 and below --large")
    ours = {
        backend: per_dial(sys.executable, OURS, args.small, args.large, backend=backend)
        for backend in ("asyncio", "trio")
    }
    for backend, count in ours.items():
        print(f"relay ({backend}):         {count / 1000:9,.0f}k instructions per dial")
    if not INTEROP_PYTHON.exists():
        print("official SDK: not installed (make interop builds .venv-interop)")
        return 0
    official = per_dial(str(INTEROP_PYTHON), OFFICIAL, args.small, args.large)
    print(f"official SDK (asyncio):  {official / 1000:9,.0f}k instructions per dial")
    for backend, count in ours.items():
        print(f"ratio, {backend}: {official / count:.2f}x fewer instructions per dial")
    return 0


if __name__ == "__main__":
    sys.exit(main())

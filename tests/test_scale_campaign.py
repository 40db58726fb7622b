"""The campaign example, small: 2 worker processes share a list of numbers against one
simulator (asyncio and trio); every number has one result, busy ones say so, and no call
is left up."""

from __future__ import annotations

import os
import runpy
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from relay_anyio import serve_simulator

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
CAMPAIGN = ROOT / "examples" / "campaign.py"


def campaign() -> dict[str, Any]:
    return runpy.run_path(str(CAMPAIGN), run_name="campaign")


def test_shards_cover_the_list_once() -> None:
    example = campaign()
    items = example["numbers"](23)
    shards = [example["shard"](items, index, 3) for index in range(3)]
    assert sorted(n for part in shards for n in part) == sorted(items)
    assert [len(part) for part in shards] == [8, 8, 7]


async def test_two_worker_processes_dial_the_whole_list() -> None:
    example = campaign()
    items = example["numbers"](30)
    async with serve_simulator(scenario=example["SCENARIO"]) as sim:
        with anyio.fail_after(60):
            results = await example["run_campaign"](sim.url, items, workers=2, in_flight=4)
        assert sim.live_calls() == []
        protocols = {call.protocol for call in sim.all_calls()}
    assert sorted(results) == sorted(items)
    assert Counter(results.values()) == {"answered": 27, "busy": 3}
    assert {results[n] for n in items if n.endswith("7")} == {"busy"}
    assert len(protocols) == 2  # two worker sessions dialled


async def test_the_script_runs_its_own_simulator() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, str(CAMPAIGN), "--numbers", "10", "--workers", "2"]
    with anyio.fail_after(60):
        result = await anyio.run_process(argv, env=env, check=False)
    assert result.returncode == 0, result.stderr.decode()
    assert b"10 numbers, 2 workers" in result.stdout
    assert b"'answered': 9, 'busy': 1" in result.stdout
    assert b"progress 10/10" in result.stderr

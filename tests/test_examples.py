"""The examples in ``examples/`` run against the simulator, in process and as scripts.

Each example reads its server from ``RELAY_URL`` (and credentials from the environment),
so a test starts ``serve_simulator``, points ``RELAY_URL`` at it, runs the example and
checks on the simulator that the calls happened as the example means them to.
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from relay_anyio import CallState, serve_simulator
from relay_proto.simulator import LiveCall

ROOT = Path(__file__).absolute().parent.parent
EXAMPLES = ROOT / "examples"
FIRST, SECOND = "+15559876543", "+15559876544"
CREDENTIALS = {"example-project": "example-token"}

pytestmark = pytest.mark.anyio


def _ended_by(calls: list[LiveCall]) -> dict[str, str | None]:
    assert all(call.state is CallState.ENDED for call in calls)
    return {call.device["params"]["to_number"]: call.end_reason for call in calls}


CASES: dict[str, tuple[dict[str, Any], dict[str, str | None]]] = {
    # example: (scenario, {to_number: end_reason} expected on the simulator afterwards)
    "single_dial": (
        {"default": {"outcome": "answer", "after": 0.05}},
        {FIRST: "hangup"},
    ),
    "serial_failover": (
        {
            "destinations": {
                FIRST: {"outcome": "busy", "after": 0.05},
                SECOND: {"outcome": "answer", "after": 0.05},
            }
        },
        {FIRST: "busy", SECOND: "hangup"},
    ),
    "parallel_ring": (
        {
            "destinations": {
                FIRST: {"outcome": "answer", "after": 0.5},
                SECOND: {"outcome": "answer", "after": 0.05},
            }
        },
        {FIRST: "cancel", SECOND: "hangup"},
    ),
}


def _load_main(name: str) -> Callable[[], Awaitable[None]]:
    namespace = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name=f"example_{name}")
    main: Callable[[], Awaitable[None]] = namespace["main"]
    return main


def _environment(url: str) -> dict[str, str]:
    return {
        "RELAY_URL": url,
        "SIGNALWIRE_PROJECT_ID": "example-project",
        "SIGNALWIRE_API_TOKEN": "example-token",
    }


@pytest.mark.parametrize("name", sorted(CASES))
async def test_example_in_process(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    scenario, expected = CASES[name]
    main = _load_main(name)
    async with serve_simulator(credentials=CREDENTIALS, scenario=scenario) as sim:
        for key, value in _environment(sim.url).items():
            monkeypatch.setenv(key, value)
        with anyio.fail_after(10):
            await main()
        assert sim.live_calls() == []
        assert _ended_by(sim.all_calls()) == expected


@pytest.mark.parametrize("name", sorted(CASES))
async def test_example_as_a_script(name: str) -> None:
    scenario, expected = CASES[name]
    async with serve_simulator(credentials=CREDENTIALS, scenario=scenario) as sim:
        # PYTHONPATH: the scripts import this checkout's packages, whatever is installed.
        env = {**os.environ, **_environment(sim.url), "PYTHONPATH": str(ROOT)}
        with anyio.fail_after(30):
            result = await anyio.run_process(
                [sys.executable, str(EXAMPLES / f"{name}.py")], env=env, check=False
            )
        assert result.returncode == 0, result.stderr.decode()
        assert sim.live_calls() == []
        assert _ended_by(sim.all_calls()) == expected


def test_examples_have_the_seed_shape() -> None:
    for name in CASES:
        source = (EXAMPLES / f"{name}.py").read_text()
        assert 'url=os.environ.get("RELAY_URL"' in source
        assert "async with client:" in source
        assert 'await call.play([{"type": "tts", "text": "Hello!"}])' in source
        assert "await action.wait()" in source
        assert "await call.hangup()" in source


async def test_demo_tells_all_five_stories_and_leaves_no_call_up(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SIGNALWIRE_SPACE", "SIGNALWIRE_PROJECT_ID", "SIGNALWIRE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    demo: Callable[..., Awaitable[int]] = runpy.run_path(str(EXAMPLES / "demo.py"))["main"]
    with anyio.fail_after(30):
        assert await demo(speed=10.0) == 0
    out = capsys.readouterr().out
    table = out.split("=" * 100)[1]
    outcomes = [line.split()[0] for line in table.splitlines() if line[:1].isdigit()]
    assert outcomes == ["1", "2", "3", "4", "5"]
    assert "answered by +15559876543" in table
    assert "answered by +15550001002" in table
    assert "answered by +15550002001" in table
    assert table.count("failed") == 1
    assert table.count("timed out") == 1
    assert "+15550002002    ended (cancel)" in table  # the parallel loser
    assert table.count("ended (cancel)") == 3  # ... and both abandoned legs
    assert out.rstrip().endswith("Calls still live on the simulator: 0")

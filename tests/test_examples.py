"""The examples in ``examples/`` run against the simulator, in process and as scripts.

Each example reads its server from ``RELAY_URL`` (and credentials from the environment),
so a test starts ``serve_simulator``, points ``RELAY_URL`` at it, runs the example and
checks on the simulator that the calls happened as the example means them to.
"""

from __future__ import annotations

import os
import runpy
import subprocess
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


# --------------------------------------------------------------------------- call control

#: Each example's lines (in any order) that show it did what it means to.
SURFACE_LINES: dict[str, list[str]] = {
    "ivr": [
        "call 1 from +15550001111: pressed 1: played the opening hours",
        "call 2 from +15550002222: pressed 2: voicemail https://sim.invalid/recordings/",
        "call 3 from +15550003333: digit 9: said goodbye",
        "Calls still live on the simulator: 0",
        "Actions still running on the simulator: 0",
    ],
    "outbound_amd": [
        "+15550001001: machine (after the beep): left the message",
        "+15550001002: person: connected to +15550100200 until hangup",
        "Calls still live on the simulator: 0",
        "Actions still running on the simulator: 0",
    ],
    "sms": [
        "message to +15550002001: delivered",
        "message to +15550002002: undelivered (Unknown subscriber)",
        "inbound from +15550003001 to +15551230000: Thanks!",
        "Messages still moving on the simulator: 0",
    ],
}


def _load_argv_main(name: str) -> Callable[[list[str]], Awaitable[int]]:
    """The ``main(argv)`` of a call-control example."""
    namespace = runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name=f"example_{name}")
    main: Callable[[list[str]], Awaitable[int]] = namespace["main"]
    return main


def _shows(out: str, expected: list[str]) -> None:
    lines = out.splitlines()
    assert lines[0].startswith("Embedded RELAY simulator at ws://127.0.0.1:")
    for line in expected:
        assert any(got.startswith(line) for got in lines), (line, out)
    assert len(lines) == len(expected) + 1, out


@pytest.mark.parametrize("name", sorted(SURFACE_LINES))
async def test_call_control_example_in_process(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main = _load_argv_main(name)
    with anyio.fail_after(30):
        assert await main([]) == 0
    _shows(capsys.readouterr().out, SURFACE_LINES[name])


@pytest.mark.parametrize("name", sorted(SURFACE_LINES))
def test_call_control_example_as_a_script(name: str) -> None:
    # In process they run on both backends; as scripts on the one not picked by default.
    backend = "trio"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / f"{name}.py"), "--backend", backend],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    _shows(result.stdout, SURFACE_LINES[name])


async def test_ivr_against_a_server_given_by_url() -> None:
    script = {
        "input": {"digits": "2", "after": 0.05},
        "record": {"seconds": 0.1, "end": "terminator"},
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    async with serve_simulator(
        scenario={"min_play_seconds": 0.05, "play_seconds_per_char": 0.001}
    ) as sim:
        command = [sys.executable, str(EXAMPLES / "ivr.py"), "--url", sim.url, "--calls", "1"]
        with anyio.fail_after(30):
            async with await anyio.open_process(command, env=env) as process:
                assert process.stdout is not None
                out = b""
                while b"Waiting for calls on context 'office'\n" not in out:
                    out += await process.stdout.receive()
                await sim.inject_inbound_call(
                    context="office", from_number=FIRST, to_number=SECOND, script=script
                )
                async for chunk in process.stdout:
                    out += chunk
                assert await process.wait() == 0
        assert sim.live_calls() == []
        assert sim.live_actions() == []
    lines = out.decode().splitlines()
    assert lines[1].startswith(f"call 1 from {FIRST}: pressed 2: voicemail https://sim.invalid/")
    assert lines[2:] == ["Calls still live for this client: 0"]


async def test_outbound_and_sms_against_a_server_given_by_url(
    capsys: pytest.CaptureFixture[str],
) -> None:
    scenario = {
        "default": {
            "outcome": "answer",
            "after": 0.05,
            "message": {"state": "failed", "after": 0.01},
        },
        "destinations": {
            FIRST: {
                "outcome": "answer",
                "after": 0.05,
                "machine": {"result": "HUMAN", "after": 0.05},
            },
            SECOND: {"outcome": "answer", "after": 0.05, "hangup_after": 0.1},
        },
        "min_play_seconds": 0.05,
    }
    amd = _load_argv_main("outbound_amd")
    sms = _load_argv_main("sms")
    async with serve_simulator(scenario=scenario) as sim:
        url = ["--url", sim.url, "--from", "+15551230000", "--to", FIRST]
        with anyio.fail_after(30):
            assert await amd([*url, "--agent", SECOND]) == 0
            assert await sms([*url, "--body", "Hi"]) == 0
            assert await amd(["--url", sim.url]) == 2  # --from, --to and --agent are needed
        assert sim.live_calls() == []
        assert _ended_by(sim.all_calls()) == {FIRST: "hangup", SECOND: "hangup"}
        (message,) = sim.all_messages()
        assert (message.to_number, message.body, message.state) == (FIRST, "Hi", "failed")
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"{FIRST}: person: connected to {SECOND} until hangup",
        "Calls still live for this client: 0",
        f"message to {FIRST}: failed (Message failed)",
        "Listening for inbound messages on 'office' for 0 s",
    ]

"""Outbound calls with answering-machine detection: leave a message, or connect an agent.

    python examples/outbound_amd.py                   # two scripted numbers, embedded simulator
    python examples/outbound_amd.py --backend trio    # the same on trio
    python examples/outbound_amd.py --host example.signalwire.com \\
        --from +15551230000 --to +15557654321 --agent +15550100200

For each number: dial it and start a machine detector. A machine: wait for the end of its
greeting (``READY``, the beep), leave the message, hang up. A person: connect them to the
agent's number and stay until the bridge ends (either side hanging up ends both); if the
agent cannot be reached, apologise and hang up.

Without ``--url`` or ``--host`` it serves the embedded simulator, where ``+15550001001`` is
an answering machine and ``+15550001002`` a person, and ends by showing that no call and
no action is left running there. Credentials: ``--project``/``--token`` or
SIGNALWIRE_PROJECT_ID/SIGNALWIRE_API_TOKEN.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from relay_anyio import Call, ConnectError, DetectResult, RelayClient, serve_simulator

MESSAGE = "Hello, this is the pharmacy: your prescription is ready for pickup."
HOLD_ON = "Please hold while we connect you to an agent."
SORRY = "Sorry, no agent is free right now. We will call you back."

FROM = "+15551230000"
MACHINE, PERSON, AGENT = "+15550001001", "+15550001002", "+15550100200"
SCENARIO: dict[str, Any] = {
    "default": {"outcome": "answer", "after": 0.2},
    "destinations": {
        # The machine's greeting is heard for 0.3 s, and ends (the beep) at 0.8 s.
        MACHINE: {
            "outcome": "answer",
            "after": 0.2,
            "machine": {"result": "MACHINE", "after": 0.3, "ready_after": 0.8},
        },
        PERSON: {"outcome": "answer", "after": 0.2, "machine": {"result": "HUMAN", "after": 0.3}},
        # The agent answers, talks for half a second and hangs up: the bridge ends with it.
        AGENT: {"outcome": "answer", "after": 0.2, "hangup_after": 0.5},
    },
    "play_seconds_per_char": 0.005,
}


def phone(from_number: str, to: str) -> dict[str, Any]:
    return {"type": "phone", "params": {"from_number": from_number, "to_number": to, "timeout": 30}}


async def say(call: Call, text: str) -> None:
    action = await call.play_tts(text)
    await action.wait()


async def reach(client: RelayClient, from_number: str, to: str, agent: str) -> str:
    """One outbound call; return what happened, in a few words."""
    call = await client.dial([[phone(from_number, to)]])
    try:
        detector = await call.detect_answering_machine(detect_message_end=True, timeout=30)
        verdict = await detector.wait()
        if verdict.call_ended:
            return "hung up before the detector decided"
        if isinstance(verdict, DetectResult) and verdict.result == "MACHINE":
            beep = await detector.wait_for("READY")  # None: the detector gave up first
            await say(call, MESSAGE)
            return f"machine ({'after the beep' if beep else 'no beep heard'}): left the message"
        await say(call, HOLD_ON)
        try:
            peer = await call.connect([[phone(from_number, agent)]])
        except ConnectError as exc:
            await say(call, SORRY)
            return f"person: agent unreachable ({exc.reason})"
        await call.wait_for_ended()
        return f"person: connected to {peer.device['params']['to_number']} until {peer.end_reason}"
    finally:
        await call.hangup()


async def calls(client: RelayClient, from_number: str, numbers: Sequence[str], agent: str) -> None:
    for to in numbers:
        print(f"{to}: {await reach(client, from_number, to, agent)}", flush=True)


async def against_simulator(args: argparse.Namespace) -> int:
    async with serve_simulator(scenario=SCENARIO) as sim:
        print(f"Embedded RELAY simulator at {sim.url}")
        async with RelayClient(project="p", token="t", url=sim.url) as client:
            await calls(client, FROM, [MACHINE, PERSON], AGENT)
        live, running = sim.live_calls(), sim.live_actions()
        print(f"Calls still live on the simulator: {len(live)}")
        print(f"Actions still running on the simulator: {len(running)}")
        return 0 if not live and not running else 1


async def run(args: argparse.Namespace) -> int:
    if args.url is None and args.host is None:
        return await against_simulator(args)
    if not (args.from_number and args.to and args.agent):
        print("--from, --to and --agent are required with --url or --host", file=sys.stderr)
        return 2
    client = RelayClient(project=args.project, token=args.token, url=args.url, host=args.host)
    async with client:
        await calls(client, args.from_number, args.to, args.agent)
        print(f"Calls still live for this client: {len(client.calls)}")
    return 0


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a RELAY server's ws:// or wss:// URL")
    parser.add_argument("--host", help="a SignalWire space, e.g. example.signalwire.com")
    parser.add_argument("--project", default=os.environ.get("SIGNALWIRE_PROJECT_ID", "p"))
    parser.add_argument("--token", default=os.environ.get("SIGNALWIRE_API_TOKEN", "t"))
    parser.add_argument("--from", dest="from_number", help="the caller id (E.164)")
    parser.add_argument("--to", action="append", help="a number to call (repeatable)")
    parser.add_argument("--agent", help="the agent's number (E.164)")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    return parser.parse_args(argv)


async def main(argv: Sequence[str] = ()) -> int:
    return await run(parse_args(argv))


if __name__ == "__main__":
    arguments = parse_args(sys.argv[1:])
    sys.exit(anyio.run(run, arguments, backend=arguments.backend))

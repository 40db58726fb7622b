"""An IVR: answer inbound calls, play a menu and collect one digit, then branch.

    python examples/ivr.py                    # three scripted callers, embedded simulator
    python examples/ivr.py --backend trio     # the same on trio
    python examples/ivr.py --host example.signalwire.com --context office --calls 5

1 plays the opening hours; 2 records a voicemail and reports its URL; anything else (or
nothing) says goodbye. Every call is hung up at the end.

Without ``--url`` or ``--host`` it serves the embedded simulator and injects three callers
whose keypresses are scripted; it ends by showing that no call and no action is left
running there. With one of them it waits on ``--context`` for ``--calls`` calls (forever
when not given), with credentials from ``--project``/``--token`` or
SIGNALWIRE_PROJECT_ID/SIGNALWIRE_API_TOKEN.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import anyio

from relay_anyio import Call, CollectResult, RecordResult, RelayClient, serve_simulator

MENU = "For our opening hours press 1. To leave a message press 2."
HOURS = "We are open from nine to five, Monday to Friday."
VOICEMAIL = "Please leave your message after the beep, then press the pound key."
GOODBYE = "Thank you for calling. Goodbye."
#: What the menu listens for: one digit, five seconds to start.
COLLECT = {"digits": {"max": 1, "digit_timeout": 5}, "initial_timeout": 5}
#: The voicemail: a beep, ended by silence or by the pound key.
RECORD = {"beep": True, "format": "mp3", "end_silence_timeout": 2, "terminators": "#"}

#: The second caller talks for 0.8 s into the voicemail, then presses the pound key.
RECORDED = {"seconds": 0.8, "end": "terminator"}
#: The embedded simulator's callers: (number, what they do once answered).
CALLERS = [
    ("+15550001111", {"input": {"digits": "1", "after": 0.2}}),
    ("+15550002222", {"input": {"digits": "2", "after": 0.2}, "record": RECORDED}),
    ("+15550003333", {"input": {"digits": "9", "after": 0.2}}),
]
OFFICE = "+15550100000"
SCENARIO = {"play_seconds_per_char": 0.005, "min_play_seconds": 0.1}


async def say(call: Call, text: str) -> None:
    action = await call.play_tts(text)
    await action.wait()


async def handle(call: Call) -> str:
    """Run the menu on one inbound call; return what happened, in a few words."""
    await call.answer()
    try:
        menu = await call.prompt_tts(MENU, COLLECT)
        choice = await menu.wait()
        if choice.call_ended:
            return "the caller hung up"
        assert isinstance(choice, CollectResult)
        if choice.kind == "digit" and choice.digits == "1":
            await say(call, HOURS)
            return "pressed 1: played the opening hours"
        if choice.kind == "digit" and choice.digits == "2":
            await say(call, VOICEMAIL)
            recording = await call.record(RECORD)
            result = await recording.wait()
            if isinstance(result, RecordResult) and result.url:
                return f"pressed 2: voicemail {result.url} ({result.duration:g} s)"
            return f"pressed 2: no voicemail ({result.state})"
        await say(call, GOODBYE)
        return f"{choice.kind} {choice.digits or ''}".rstrip() + ": said goodbye"
    finally:
        await call.hangup()


async def serve_calls(client: RelayClient, count: int | None, first: int = 1) -> None:
    """Handle inbound calls one at a time as they come (numbered from ``first``); stop
    after ``count`` of them."""
    number = first
    async for call in client.inbound_calls():
        caller = call.device.get("params", {}).get("from_number", "?")
        print(f"call {number} from {caller}: {await handle(call)}", flush=True)
        if count is not None and number - first + 1 >= count:
            return
        number += 1


async def against_simulator(args: argparse.Namespace) -> int:
    async with serve_simulator(scenario=SCENARIO) as sim:
        print(f"Embedded RELAY simulator at {sim.url}")
        client = RelayClient(project="p", token="t", url=sim.url, contexts=[args.context])
        async with client:
            await client.ping()  # the contexts are subscribed once the connect is answered
            for index, (number, script) in enumerate(CALLERS, 1):
                await sim.inject_inbound_call(
                    context=args.context, from_number=number, to_number=OFFICE, script=script
                )
                await serve_calls(client, 1, first=index)
        live, running = sim.live_calls(), sim.live_actions()
        print(f"Calls still live on the simulator: {len(live)}")
        print(f"Actions still running on the simulator: {len(running)}")
        return 0 if not live and not running else 1


async def run(args: argparse.Namespace) -> int:
    if args.url is None and args.host is None:
        return await against_simulator(args)
    client = RelayClient(
        project=args.project,
        token=args.token,
        url=args.url,
        host=args.host,
        contexts=[args.context],
    )
    async with client:
        print(f"Waiting for calls on context {args.context!r}")
        await serve_calls(client, args.calls)
        print(f"Calls still live for this client: {len(client.calls)}")
    return 0


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a RELAY server's ws:// or wss:// URL")
    parser.add_argument("--host", help="a SignalWire space, e.g. example.signalwire.com")
    parser.add_argument("--project", default=os.environ.get("SIGNALWIRE_PROJECT_ID", "p"))
    parser.add_argument("--token", default=os.environ.get("SIGNALWIRE_API_TOKEN", "t"))
    parser.add_argument("--context", default="office", help="where inbound calls arrive")
    parser.add_argument("--calls", type=int, help="stop after this many calls")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    return parser.parse_args(argv)


async def main(argv: Sequence[str] = ()) -> int:
    return await run(parse_args(argv))


if __name__ == "__main__":
    arguments = parse_args(sys.argv[1:])
    sys.exit(anyio.run(run, arguments, backend=arguments.backend))

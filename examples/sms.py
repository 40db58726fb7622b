"""Messaging: send SMS and follow each to its final state; print the messages that come in.

    python examples/sms.py                   # embedded simulator: one delivered, one not
    python examples/sms.py --backend trio    # the same on trio
    python examples/sms.py --host example.signalwire.com --context office \\
        --from +15551230000 --to +15557654321 --body "Hello" --listen 60

Each message is sent with ``send_message`` and followed with ``wait()`` to ``delivered``,
``undelivered`` or ``failed`` (with the reason). Inbound messages on ``--context`` are
printed as they arrive, through an ``on_message`` handler, for ``--listen`` seconds.

Without ``--url`` or ``--host`` it serves the embedded simulator, where ``+15550002001``
gets its messages and ``+15550002002`` does not, injects one inbound message, and ends
by showing that no message is left moving there. Credentials: ``--project``/``--token``
or SIGNALWIRE_PROJECT_ID/SIGNALWIRE_API_TOKEN.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from relay_anyio import Message, RelayClient, serve_simulator

FROM = "+15551230000"
REACHABLE, UNREACHABLE, CUSTOMER = "+15550002001", "+15550002002", "+15550003001"
SCENARIO: dict[str, Any] = {
    "default": {"outcome": "answer", "message": {"state": "delivered", "after": 0.1}},
    "destinations": {
        UNREACHABLE: {
            "outcome": "answer",
            "message": {"state": "undelivered", "after": 0.1, "reason": "Unknown subscriber"},
        },
    },
}


def receiver(received: anyio.Event | None = None) -> Any:
    """An ``on_message`` handler that prints each inbound message."""

    async def on_message(message: Message) -> None:
        text = message.body or ", ".join(message.media)
        print(f"inbound from {message.from_number} to {message.to_number}: {text}", flush=True)
        if received is not None:
            received.set()

    return on_message


async def send(client: RelayClient, from_number: str, to: str, body: str) -> None:
    message = await client.send_message(from_number=from_number, to_number=to, body=body)
    state = await message.wait(timeout=120)
    why = f" ({message.reason})" if message.reason else ""
    print(f"message to {to}: {state}{why}", flush=True)


async def against_simulator(args: argparse.Namespace) -> int:
    async with serve_simulator(scenario=SCENARIO) as sim:
        print(f"Embedded RELAY simulator at {sim.url}")
        received = anyio.Event()
        client = RelayClient(project="p", token="t", url=sim.url, contexts=[args.context])
        client.on_message(receiver(received))
        async with client:
            async with anyio.create_task_group() as tg:  # both at once
                for to in (REACHABLE, UNREACHABLE):
                    tg.start_soon(send, client, FROM, to, "Your order has shipped.")
            await sim.inject_message(
                context=args.context, from_number=CUSTOMER, to_number=FROM, body="Thanks!"
            )
            await received.wait()
        moving = sim.live_messages()
        print(f"Messages still moving on the simulator: {len(moving)}")
        return 0 if not moving else 1


async def run(args: argparse.Namespace) -> int:
    if args.url is None and args.host is None:
        return await against_simulator(args)
    if not (args.from_number and args.to):
        print("--from and --to are required with --url or --host", file=sys.stderr)
        return 2
    client = RelayClient(
        project=args.project,
        token=args.token,
        url=args.url,
        host=args.host,
        contexts=[args.context],
    )
    client.on_message(receiver())
    async with client:
        async with anyio.create_task_group() as tg:
            for to in args.to:
                tg.start_soon(send, client, args.from_number, to, args.body)
        print(f"Listening for inbound messages on {args.context!r} for {args.listen:g} s")
        await anyio.sleep(args.listen)
    return 0


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a RELAY server's ws:// or wss:// URL")
    parser.add_argument("--host", help="a SignalWire space, e.g. example.signalwire.com")
    parser.add_argument("--project", default=os.environ.get("SIGNALWIRE_PROJECT_ID", "p"))
    parser.add_argument("--token", default=os.environ.get("SIGNALWIRE_API_TOKEN", "t"))
    parser.add_argument("--context", default="office", help="where inbound messages arrive")
    parser.add_argument("--from", dest="from_number", help="the sending number (E.164)")
    parser.add_argument("--to", action="append", help="a number to message (repeatable)")
    parser.add_argument("--body", default="Hello from relay.", help="the text to send")
    parser.add_argument("--listen", type=float, default=0.0, help="seconds to wait for inbound")
    parser.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")
    return parser.parse_args(argv)


async def main(argv: Sequence[str] = ()) -> int:
    return await run(parse_args(argv))


if __name__ == "__main__":
    arguments = parse_args(sys.argv[1:])
    sys.exit(anyio.run(run, arguments, backend=arguments.backend))

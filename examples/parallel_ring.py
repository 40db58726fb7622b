"""Parallel ring-all: ring two phones at once; the first to answer gets the call.

``devices=[[A, B]]``: an inner list rings together, and the other leg is cancelled as
soon as one answers. Runs against the local simulator by default (``relay serve``);
set RELAY_URL, SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN to use a real space.
"""

from __future__ import annotations

import os

import anyio

from relay_anyio import RelayClient


async def main() -> None:
    client = RelayClient(
        project=os.environ.get("SIGNALWIRE_PROJECT_ID", "demo-project"),
        token=os.environ.get("SIGNALWIRE_API_TOKEN", "demo-token"),
        url=os.environ.get("RELAY_URL", "ws://127.0.0.1:8765"),
        contexts=["default"],
    )
    async with client:
        call = await client.dial(
            devices=[
                [
                    {
                        "type": "phone",
                        "params": {
                            "from_number": "+15551234567",
                            "to_number": "+15559876543",
                            "timeout": 30,
                        },
                    },
                    {
                        "type": "phone",
                        "params": {
                            "from_number": "+15551234567",
                            "to_number": "+15559876544",
                            "timeout": 30,
                        },
                    },
                ]
            ]
        )
        action = await call.play([{"type": "tts", "text": "Hello!"}])
        await action.wait()
        await call.hangup()


if __name__ == "__main__":
    anyio.run(main)

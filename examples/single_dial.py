"""The seed example: dial one phone, say hello, hang up.

Runs against the local simulator by default (start it with ``relay serve``, which
listens on ws://127.0.0.1:8765); set RELAY_URL, SIGNALWIRE_PROJECT_ID and
SIGNALWIRE_API_TOKEN to use a real space (RELAY_URL=wss://example.signalwire.com).
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
                    }
                ]
            ]
        )
        action = await call.play([{"type": "tts", "text": "Hello!"}])
        await action.wait()
        await call.hangup()


if __name__ == "__main__":
    anyio.run(main)

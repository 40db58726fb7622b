"""A small inbound app: answer calls to the ``office`` context with a greeting; refuse
callers on a block list without answering.

``handle`` is the handler for one call (give it to ``client.on_call``, or call it for
each call of ``client.inbound_calls()``). Tested in ``tests/test_testkit.py`` and shown in
``docs/testing.md``.

Run it against the simulator (``relay serve``), or a real space with RELAY_URL,
SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN set.
"""

from __future__ import annotations

import os
from collections.abc import Collection

import anyio

from relay_anyio import Call, RelayClient

CONTEXT = "office"
GREETING = "Welcome to the office. Nobody is here; please call again later."
BLOCKED: frozenset[str] = frozenset({"+15550009999"})


def caller(call: Call) -> str | None:
    """The calling number of an inbound phone call."""
    number = call.device.get("params", {}).get("from_number")
    return number if isinstance(number, str) else None


async def handle(call: Call, *, blocked: Collection[str] = BLOCKED) -> None:
    """Refuse a blocked caller (``busy``, never answered); greet anyone else, then hang up."""
    if caller(call) in blocked:
        await call.hangup("busy")
        return
    await call.answer()
    try:
        action = await call.play([{"type": "tts", "text": GREETING}])
        await action.wait()
    finally:
        await call.hangup()


async def main() -> None:
    client = RelayClient(
        project=os.environ.get("SIGNALWIRE_PROJECT_ID", "demo-project"),
        token=os.environ.get("SIGNALWIRE_API_TOKEN", "demo-token"),
        url=os.environ.get("RELAY_URL", "ws://127.0.0.1:8765"),
        contexts=[CONTEXT],
    )
    client.on_call(handle)
    async with client:
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main)

"""A small outbound app: ring a list of contacts in turn until one answers, read them a
message, hang up.

Each contact is one or more destinations (E.164 numbers or ``sip:`` URIs) rung together;
contacts are tried one after another. ``plan`` is pure (it builds the dial plan), so it can
be property-tested in memory; ``notify`` is the app's async entry point. Tested in
``tests/test_testkit.py`` and shown in ``docs/testing.md``.

Run it against the simulator (``relay serve``), or a real space with RELAY_URL,
SIGNALWIRE_PROJECT_ID and SIGNALWIRE_API_TOKEN set.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import anyio

from relay_anyio import DialFailedError, DialTimeoutError, RelayClient

FROM_NUMBER = "+15551230000"
FROM_URI = "sip:notify@example.com"
#: How long each contact rings, in seconds.
RING_SECONDS = 20
#: How much longer than every contact's ring time the whole dial may take.
DIAL_MARGIN = 5.0


def device(destination: str, *, ring_seconds: int = RING_SECONDS) -> dict[str, Any]:
    """A phone device for an E.164 number, a SIP device for a ``sip:``/``sips:`` URI."""
    if destination.startswith(("sip:", "sips:")):
        params: dict[str, Any] = {"to": destination, "from": FROM_URI}
        return {"type": "sip", "params": {**params, "timeout": ring_seconds}}
    params = {"to_number": destination, "from_number": FROM_NUMBER, "timeout": ring_seconds}
    return {"type": "phone", "params": params}


def plan(
    contacts: Sequence[Sequence[str]], *, ring_seconds: int = RING_SECONDS
) -> list[list[dict[str, Any]]]:
    """The dial plan: one group per contact, tried in order; a contact's destinations ring
    together."""
    return [[device(d, ring_seconds=ring_seconds) for d in contact] for contact in contacts]


def dial_timeout(contacts: Sequence[Sequence[str]], *, ring_seconds: int = RING_SECONDS) -> float:
    """Long enough for every contact to ring out."""
    return len(contacts) * ring_seconds + DIAL_MARGIN


def destination(call_device: dict[str, Any]) -> str:
    """The number or URI a device dialled."""
    params: dict[str, Any] = call_device["params"]
    return str(params.get("to_number") or params["to"])


async def notify(
    client: RelayClient,
    contacts: Sequence[Sequence[str]],
    message: str,
    *,
    ring_seconds: int = RING_SECONDS,
) -> str | None:
    """Read ``message`` to the first contact who answers; return the destination that
    answered, or None if nobody did. Always hangs up."""
    try:
        call = await client.dial(
            plan(contacts, ring_seconds=ring_seconds),
            dial_timeout=dial_timeout(contacts, ring_seconds=ring_seconds),
        )
    except (DialFailedError, DialTimeoutError):
        return None
    try:
        action = await call.play([{"type": "tts", "text": message}])
        await action.wait()
    finally:
        await call.hangup()
    return destination(call.device)


async def main() -> None:
    client = RelayClient(
        project=os.environ.get("SIGNALWIRE_PROJECT_ID", "demo-project"),
        token=os.environ.get("SIGNALWIRE_API_TOKEN", "demo-token"),
        url=os.environ.get("RELAY_URL", "ws://127.0.0.1:8765"),
    )
    async with client:
        contacts = [["+15559876543"], ["+15559876544", "sip:oncall@example.com"]]
        reached = await notify(client, contacts, "The build is broken.")
        print("reached", reached or "nobody")


if __name__ == "__main__":
    anyio.run(main)

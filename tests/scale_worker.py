"""One worker process for the many-consumer tests: subscribes to ``office`` on the
simulator at ``argv[1]``, answers and hangs up every inbound call it is offered, prints
``ready`` once subscribed, then the call_id of each call it answered (after its hang-up);
it exits when a line arrives on stdin.
"""

from __future__ import annotations

import sys

import anyio

from relay_anyio import Call, RelayClient


async def main(url: str) -> None:
    async def handle(call: Call) -> None:
        await call.answer()
        await call.hangup()
        print(call.call_id, flush=True)

    async with RelayClient(project="p", token="t", url=url, contexts=["office"]) as client:
        client.on_call(handle)
        await client.ping()  # the subscription is in place
        print("ready", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)  # until the test says stop


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])

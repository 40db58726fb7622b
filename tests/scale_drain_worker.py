"""One worker process for the drain test: subscribes to ``office`` on the simulator at
``argv[1]`` and answers every inbound call it is offered. With ``hold`` (``argv[2]``) its
handlers keep their calls (printing ``took <call_id>``) until it is told to drain. Prints
``ready`` once subscribed, then ``answered <call_id>`` for each call it answered and hung
up. A ``drain`` line on stdin drains it (``RelayClient.drain``: ``draining`` once no new
call is taken, ``drained`` at the end) and it exits; any other line exits.
"""

from __future__ import annotations

import sys

import anyio

from relay_anyio import Call, RelayClient


async def main(url: str, hold: bool) -> None:
    release = anyio.Event()

    async def handle(call: Call) -> None:
        await call.answer()
        if hold:
            print("took", call.call_id, flush=True)
            await release.wait()
        await call.hangup()
        print("answered", call.call_id, flush=True)

    async with RelayClient(project="p", token="t", url=url, contexts=["office"]) as client:
        client.on_call(handle)
        await client.ping()  # the subscription is in place
        print("ready", flush=True)
        line = await anyio.to_thread.run_sync(sys.stdin.readline)
        if line.strip() == "drain":
            started = anyio.Event()

            async def drain() -> None:
                started.set()
                await client.drain(timeout=20.0)  # no new call is taken from here on

            async with anyio.create_task_group() as tg:
                tg.start_soon(drain)
                await started.wait()
                print("draining", flush=True)
                release.set()  # the held calls finish while the drain waits for them
            print("drained", flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2:] == ["hold"])

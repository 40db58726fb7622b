"""A scripted server for the call-control tests (``test_anyio_actions``, ``_bridge``,
``_messaging``): a ``ScriptedTransport`` peer that accepts the connect and answers one
dial, plus builders for the action, bridge and message events it then sends."""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio_support import BOUND, ScriptedTransport
from client_frames import PHONE_A, dial_params, event, ok, state_params

from relay_anyio import Call, RelayClient

CALL_ID = "CALL-1"
NODE_ID = "NODE-1"
_ids = itertools.count(1)


def ev(event_type: str, params: dict[str, Any]) -> str:
    """A ``signalwire.event`` with a fresh id."""
    return event(f"ev{next(_ids)}", event_type, params)


def action_event(verb: str, control_id: str, **params: Any) -> str:
    """``calling.call.<verb>`` for ``control_id`` on the dialled call."""
    inner = {"call_id": CALL_ID, "node_id": NODE_ID, "control_id": control_id, **params}
    return ev(f"calling.call.{verb}", inner)


def call_state(state: str, call_id: str = CALL_ID, **extra: Any) -> str:
    return ev("calling.call.state", state_params(call_id, state, **extra))


def reply(frame: dict[str, Any], **result: Any) -> str:
    """A ``200`` reply to ``frame``, with extra result fields."""
    body = {"code": "200", "message": "OK", **result}
    return json.dumps({"jsonrpc": "2.0", "id": frame["id"], "result": body})


def refuse(frame: dict[str, Any], code: str = "400", message: str = "refused") -> str:
    body = {"code": code, "message": message}
    return json.dumps({"jsonrpc": "2.0", "id": frame["id"], "result": body})


async def answer_dial(peer: ScriptedTransport) -> None:
    """Accept the connect and answer the client's dial as ``CALL-1``."""
    await peer.answer_connect()
    dial = await peer.next_request()
    assert dial["method"] == "calling.dial"
    tag = dial["params"]["tag"]
    peer.deliver(
        ok(dial["id"], "Dialing"),
        ev("calling.call.state", state_params(CALL_ID, "answered", tag=tag)),
        ev("calling.call.dial", dial_params(tag, "answered", call_id=CALL_ID)),
    )


async def expect(peer: ScriptedTransport, method: str) -> dict[str, Any]:
    """The client's next request, which must be ``method``."""
    with anyio.fail_after(BOUND):
        frame = await peer.next_request()
    assert frame["method"] == method, frame
    return frame


@asynccontextmanager
async def scripted_call(
    **options: Any,
) -> AsyncIterator[tuple[RelayClient, Call, ScriptedTransport]]:
    """A client with a dialled call (``CALL-1``) on a scripted peer: the test then reads
    the client's requests and delivers replies and events itself."""
    peer = ScriptedTransport()
    options.setdefault("ping_interval", None)
    client = peer.client(**options)
    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(answer_dial, peer)
            async with client:
                call = await client.dial([[PHONE_A]])
                yield client, call, peer


async def serving(
    server: Callable[[], Coroutine[Any, Any, None]], client_side: Callable[[], Awaitable[Any]]
) -> Any:
    """Run ``server()`` alongside ``client_side()``; return what the client side returned."""
    out: list[Any] = []

    async def run_client() -> None:
        out.append(await client_side())

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server)
            await run_client()
    except BaseExceptionGroup as group:  # one failure: raise it as it is
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    return out[0]


async def quiet(peer: ScriptedTransport, client: RelayClient) -> None:
    """Nothing was written since the test's last read, but the ping this sends."""

    async def server() -> None:
        frame = await expect(peer, "signalwire.ping")
        peer.deliver(ok(frame["id"]))

    await serving(server, client.ping)

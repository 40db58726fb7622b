"""``Call.connect()`` / ``disconnect()`` against a scripted server (both backends)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from client_frames import PHONE_B
from scripted_calls import (
    CALL_ID,
    NODE_ID,
    call_state,
    ev,
    expect,
    quiet,
    refuse,
    reply,
    scripted_call,
    serving,
)

from relay_anyio import (
    Call,
    CallGoneError,
    CallState,
    ConfigurationError,
    ConnectError,
    ConnectState,
    RequestError,
)

pytestmark = pytest.mark.anyio

PEER = {"call_id": "PEER-1", "node_id": NODE_ID, "tag": "agent", "device": PHONE_B}


def connect_event(state: str, **extra: Any) -> str:
    inner = {"call_id": CALL_ID, "node_id": NODE_ID, "connect_state": state, **extra}
    return ev("calling.call.connect", inner)


async def test_connect_returns_the_peer_as_a_call_of_the_client() -> None:
    async with scripted_call() as (client, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.connect")
            params = frame["params"]
            assert params["call_id"] == CALL_ID
            assert params["devices"] == [[PHONE_B]]
            assert params["ringback"] == [{"type": "ringtone", "params": {"name": "us"}}]
            peer.deliver(reply(frame, message="Connecting"), connect_event("connecting"))
            await anyio.wait_all_tasks_blocked()
            peer.deliver(connect_event("connected", peer=PEER))

        ringback = [{"type": "ringtone", "params": {"name": "us"}}]
        other = await serving(server, lambda: call.connect([[PHONE_B]], ringback=ringback))
        assert isinstance(other, Call)
        assert (other.call_id, other.tag) == ("PEER-1", "agent")
        assert call.connect_state is ConnectState.CONNECTED
        assert call.peer is other
        assert other in client.calls
        # The peer is a call like any other: its end takes it out of the client's calls.
        peer.deliver(
            connect_event("disconnected"), call_state("ended", call_id="PEER-1", tag="agent")
        )
        assert await other.wait_for_ended() is None
        assert other.state is CallState.ENDED
        assert other not in client.calls
        assert call.connect_state is not None
        assert call.connect_state.terminal  # disconnected since the check above
        assert call.peer is None
        assert not call.ended


@pytest.mark.parametrize(
    ("extra", "text"),
    [({"reason": "busy", "source": "callee"}, "reason busy, source callee"), ({}, "failed")],
)
async def test_connect_failure_raises_connect_error(extra: dict[str, Any], text: str) -> None:
    async with scripted_call() as (client, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.connect")
            peer.deliver(
                reply(frame), connect_event("connecting"), connect_event("failed", **extra)
            )

        with pytest.raises(ConnectError, match=text) as caught:
            await serving(server, lambda: call.connect([[PHONE_B]]))
        assert caught.value.reason == extra.get("reason")
        assert caught.value.source == extra.get("source")
        assert call.connect_state is ConnectState.FAILED
        await quiet(peer, client)  # nothing to undo: no disconnect


async def test_refused_connect_sends_no_disconnect() -> None:
    async with scripted_call() as (client, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.connect")
            peer.deliver(refuse(frame))

        with pytest.raises(RequestError):
            await serving(server, lambda: call.connect([[PHONE_B]]))
        await quiet(peer, client)


@pytest.mark.parametrize("connected", [False, True])
async def test_cancelled_connect_disconnects_and_keeps_the_call(connected: bool) -> None:
    async with scripted_call() as (client, call, peer):
        with anyio.CancelScope() as scope:

            async def server() -> None:
                frame = await expect(peer, "calling.connect")
                peer.deliver(reply(frame), connect_event("connecting"))
                await anyio.wait_all_tasks_blocked()
                if connected:  # the peer answered just as the caller gave up
                    peer.deliver(connect_event("connected", peer=PEER))
                scope.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(server)
                await call.connect([[PHONE_B]])
                if not connected:  # pragma: no cover
                    pytest.fail("not cancelled")
        disconnect = await expect(peer, "calling.disconnect")
        assert disconnect["params"] == {"node_id": NODE_ID, "call_id": CALL_ID}
        peer.deliver(reply(disconnect), connect_event("disconnected"))
        await quiet(peer, client)
        assert not call.ended  # the original call was not hung up


async def test_call_ending_during_connect_raises_call_gone() -> None:
    async with scripted_call() as (_, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.connect")
            peer.deliver(reply(frame), call_state("ended"))

        with pytest.raises(CallGoneError):
            await serving(server, lambda: call.connect([[PHONE_B]]))


async def test_disconnect_and_connect_validation() -> None:
    async with scripted_call() as (client, call, peer):

        async def server() -> None:
            frame = await expect(peer, "calling.disconnect")
            assert frame["params"] == {"node_id": NODE_ID, "call_id": CALL_ID}
            peer.deliver(reply(frame, message="Disconnecting"))

        result = await serving(server, call.disconnect)
        assert result["message"] == "Disconnecting"
        with pytest.raises(ConfigurationError):
            await call.connect([[{"type": "phone", "params": {"to_number": "x"}}]])
        with pytest.raises(ConfigurationError, match="status_url"):
            await call.connect([[PHONE_B]], status_url="")
        await quiet(peer, client)

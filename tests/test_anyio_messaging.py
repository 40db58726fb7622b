"""``RelayClient.send_message`` and inbound messages against a scripted server (both
backends)."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest
from anyio_support import BOUND, ScriptedTransport
from scripted_calls import ev, expect, reply, serving

from relay_anyio import (
    ConfigurationError,
    ConnectionLostError,
    Message,
    MessageState,
    RelayClient,
)

pytestmark = pytest.mark.anyio

TO, FROM = "+15550000002", "+15550000001"


def state_event(message_id: str, state: str, **extra: Any) -> str:
    inner = {
        "message_id": message_id,
        "context": "office",
        "direction": "outbound",
        "from_number": FROM,
        "to_number": TO,
        "body": "hi",
        "media": [],
        "tags": [],
        "segments": 1,
        "message_state": state,
        **extra,
    }
    return ev("messaging.state", inner)


def receive_event(message_id: str, body: str) -> str:
    inner = {
        "message_id": message_id,
        "context": "office",
        "direction": "inbound",
        "from_number": TO,
        "to_number": FROM,
        "body": body,
        "media": [],
        "tags": [],
        "segments": 1,
        "message_state": "received",
    }
    return ev("messaging.receive", inner)


async def connected(**options: Any) -> tuple[ScriptedTransport, RelayClient]:
    peer = ScriptedTransport()
    options.setdefault("ping_interval", None)
    return peer, peer.client(contexts=["office"], **options)


async def test_send_message_and_its_states() -> None:
    peer, client = await connected()
    completed: list[Message] = []
    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.answer_connect)
            async with client:

                async def server() -> None:
                    frame = await expect(peer, "messaging.send")
                    assert frame["params"] == {
                        "context": "signalwire_SIG_1",  # the session's protocol
                        "to_number": TO,
                        "from_number": FROM,
                        "body": "hi",
                        "tags": ["t"],
                    }
                    peer.deliver(
                        reply(frame, message="Message accepted", message_id="M-1"),
                        state_event("M-1", "queued"),
                    )

                message = await serving(
                    server,
                    lambda: client.send_message(
                        to_number=TO,
                        from_number=FROM,
                        body="hi",
                        tags=["t"],
                        on_completed=completed.append,
                    ),
                )
                assert message.message_id == "M-1"
                assert message.state == MessageState.QUEUED
                assert not message.done
                peer.deliver(state_event("M-1", "sent"), state_event("M-1", "delivered"))
                assert await message.wait() == MessageState.DELIVERED
                assert completed == [message]
                assert message.segments == 1


async def test_states_before_the_reply_are_not_lost() -> None:
    peer, client = await connected()
    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.answer_connect)
            async with client:

                async def server() -> None:
                    frame = await expect(peer, "messaging.send")
                    # The final state comes first, then the reply, each in its own read.
                    peer.deliver(state_event("M-2", "undelivered", reason="carrier rejected"))
                    await anyio.wait_all_tasks_blocked()
                    peer.deliver(reply(frame, message_id="M-2"))

                message = await serving(
                    server,
                    lambda: client.send_message(
                        to_number=TO, from_number=FROM, media=["https://x/a.png"]
                    ),
                )
                assert message.done
                assert await message.wait() == MessageState.UNDELIVERED
                assert message.reason == "carrier rejected"


async def test_send_message_validation_and_close() -> None:
    peer, client = await connected()
    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.answer_connect)
            async with client:
                with pytest.raises(ConfigurationError, match="body or media"):
                    await client.send_message(to_number=TO, from_number=FROM)
                with pytest.raises(ConfigurationError, match="to_number"):
                    await client.send_message(to_number="555", from_number=FROM, body="x")

                async def server() -> None:
                    frame = await expect(peer, "messaging.send")
                    peer.deliver(reply(frame, message_id="M-3"))

                message = await serving(
                    server,
                    lambda: client.send_message(to_number=TO, from_number=FROM, body="x"),
                )
        with pytest.raises(ConnectionLostError):
            await message.wait()


async def test_inbound_messages_through_a_handler() -> None:
    peer, client = await connected()
    got: list[Message] = []
    two = anyio.Event()

    async def handler(message: Message) -> None:
        got.append(message)
        if len(got) == 2:
            two.set()
        raise RuntimeError("a failing handler is logged, not raised")

    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.answer_connect)
            async with client:
                client.on_message(handler)
                peer.deliver(receive_event("IN-1", "one"), receive_event("IN-2", "two"))
                await two.wait()
    assert sorted((m.message_id, m.body, m.state) for m in got) == [  # tasks: any order
        ("IN-1", "one", MessageState.RECEIVED),
        ("IN-2", "two", MessageState.RECEIVED),
    ]
    assert all(m.done for m in got)


async def test_inbound_messages_iterator_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    peer, client = await connected(inbound_buffer=1)
    caplog.set_level(logging.WARNING, logger="relay_anyio")
    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(peer.answer_connect)
            async with client:
                peer.deliver(receive_event("IN-1", "one"), receive_event("IN-2", "two"))
                await anyio.wait_all_tasks_blocked()
                messages = client.inbound_messages()
                first = await messages.__anext__()
                assert first.message_id == "IN-1"
                peer.deliver(receive_event("IN-3", "three"))
                assert (await messages.__anext__()).message_id == "IN-3"
        # The iteration ends when the client closes.
        assert [m async for m in messages] == []
    assert "inbound message IN-2 dropped" in caplog.text

"""The tolerant reader through the adapter, on asyncio and trio.

The client talks to a ``ScriptedTransport`` whose peer is the test. An unknown state or an
unreadable event reaches ``on_event``, is logged at WARNING and changes nothing; a state
event without ``node_id`` still moves the call; the pings carry the wall clock; control
ids are UUID4s; a project id may come with a JWT.
"""

from __future__ import annotations

import logging
import time
import uuid

import anyio
import pytest
from anyio_support import BOUND, ScriptedTransport
from client_frames import PHONE_A, dial_params, event, ok, result, state_params

from relay_anyio import RelayClient
from relay_proto import CallState, Event, UnknownState, UnreadableEvent

pytestmark = pytest.mark.anyio


def make_client(peer: ScriptedTransport, seen: list[Event], **options: object) -> RelayClient:
    return peer.client(on_event=seen.append, **options)


async def test_unknown_states_and_unreadable_events_are_reported_and_change_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="relay_anyio")
    peer = ScriptedTransport()
    seen: list[Event] = []
    client = make_client(peer, seen, ping_interval=None)

    async def serve() -> None:
        await peer.answer_connect()
        dial = await peer.next_request()
        tag = dial["params"]["tag"]
        no_node = state_params("CALL-1", "answered", tag=tag)
        del no_node["node_id"]
        peer.deliver(
            ok(dial["id"], "Dialing"),
            event("e1", "calling.call.state", state_params("CALL-1", "created", tag=tag)),
            event("e2", "calling.call.state", state_params("CALL-1", "early_media", tag=tag)),
            event("e3", "calling.call.dial", dial_params(tag, "progressing")),
            event("e4", "calling.call.state", no_node),  # node_id from the known leg
            event("e5", "calling.call.dial", dial_params(tag, "answered", call_id="CALL-1")),
        )
        play = await peer.next_request()
        control_id = play["params"]["control_id"]
        assert uuid.UUID(control_id).version == 4
        progress = {"call_id": "CALL-1", "control_id": control_id, "state": "buffering"}
        peer.deliver(
            ok(play["id"]),
            event("e6", "calling.call.play", progress),
            event("e7", "calling.call.play", {"call_id": "CALL-1", "state": "finished"}),
            event("e8", "calling.call.play", {**progress, "state": "finished"}),
        )
        ended = state_params("CALL-1", "ended", tag=None, end_reason="hangup")
        del ended["node_id"]
        peer.deliver(event("e9", "calling.call.state", ended))

    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            async with client:
                call = await client.dial([[PHONE_A]])
                assert call.state == "answered"
                action = await call.play([{"type": "tts", "text": "hi"}])
                assert await action.wait() == "finished"
                await call.wait_for_ended()
                assert call.state is CallState.ENDED
                assert call.end_reason == "hangup"
    unknown = [(e.key, e.raw_state) for e in seen if isinstance(e, UnknownState)]
    assert unknown == [("call_state", "early_media"), ("dial_state", "progressing"),
                       ("state", "buffering")]  # fmt: skip
    [unreadable] = [e for e in seen if isinstance(e, UnreadableEvent)]
    assert unreadable.event_type == "calling.call.play"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("not understood" in w for w in warnings) == 4, warnings
    assert any("early_media" in w for w in warnings)
    assert any("control_id" in w for w in warnings)


async def test_pings_carry_the_wall_clock() -> None:
    """``client.ping()`` and the liveness ping both carry ``time.time()``, not the event
    loop's clock (which is what drives the timers)."""
    peer = ScriptedTransport()
    client = make_client(peer, [], ping_interval=0.05)
    stamps: list[float] = []
    two = anyio.Event()

    async def serve(scope: anyio.CancelScope) -> None:
        with scope:
            await peer.answer_connect()
            while True:
                asked = await peer.next_request()
                assert asked["method"] == "signalwire.ping"
                stamps.append(asked["params"]["timestamp"])
                peer.deliver(result(asked["id"], {}))
                if len(stamps) == 2:
                    two.set()

    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            serving = anyio.CancelScope()
            tg.start_soon(serve, serving)
            async with client:
                before = time.time()
                await client.ping()
                await two.wait()  # the second one is the timer task's liveness ping
                after = time.time()
                serving.cancel()
    assert all(before - 1 <= stamp <= after + 1 for stamp in stamps), (before, stamps, after)


async def test_a_project_id_may_come_with_a_jwt() -> None:
    peer = ScriptedTransport()
    client = make_client(peer, [], project="P-UUID", token=None, jwt_token="JWT-xyz",
                         ping_interval=None)  # fmt: skip
    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:

            async def serve() -> None:
                connect = await peer.answer_connect()
                params = connect["params"]
                assert isinstance(params, dict)
                assert params["authentication"] == {"jwt_token": "JWT-xyz"}

            tg.start_soon(serve)
            async with client:
                pass

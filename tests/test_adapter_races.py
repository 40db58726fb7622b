"""Adapter races that a live simulator cannot be made to produce on demand.

The client talks to a ``ScriptedTransport`` (through its public ``transport_factory``
option) whose peer is the test: it answers with hand-made frames (``client_frames``) and
delivers a reply and the next events in a single read, as one socket read can.
"""

from __future__ import annotations

import anyio
import pytest
from anyio_support import BOUND, ScriptedTransport
from client_frames import PHONE_A, dial_params, event, ok, state_params

from relay_anyio import ConfigurationError, PlayState

pytestmark = pytest.mark.anyio


async def _answer_connect_and_dial(peer: ScriptedTransport) -> None:
    await peer.answer_connect()
    dial = await peer.next_request()
    assert dial["method"] == "calling.dial"
    tag = dial["params"]["tag"]
    peer.deliver(
        ok(dial["id"], "Dialing"),
        event("e1", "calling.call.state", state_params("CALL-1", "created", tag=tag)),
        event("e2", "calling.call.state", state_params("CALL-1", "answered", tag=tag)),
        event("e3", "calling.call.dial", dial_params(tag, "answered", call_id="CALL-1")),
    )


@pytest.mark.parametrize("final", ["finished", "error"])
async def test_play_whose_final_event_shares_a_read_with_the_reply(final: str) -> None:
    peer = ScriptedTransport()
    client = peer.client(ping_interval=None)

    async def serve() -> None:
        await _answer_connect_and_dial(peer)
        play = await peer.next_request()
        assert play["method"] == "calling.play"
        progress = {"call_id": "CALL-1", "control_id": play["params"]["control_id"], "state": final}
        peer.deliver(ok(play["id"]), event("e9", "calling.call.play", progress))

    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            async with client:
                call = await client.dial([[PHONE_A]])
                action = await call.play([{"type": "tts", "text": "hi"}])
                assert action.done
                assert await action.wait() is PlayState(final)
                assert not call.ended


async def test_leaving_before_the_background_loops_ran_still_stops_them() -> None:
    """A client left without a single checkpoint after ``__aenter__`` (the invalid dial
    raises before anything yields, the scripted close does not yield either): the timer
    and writer loops have not run their first step yet and must still be stopped."""
    peer = ScriptedTransport()
    client = peer.client(ping_interval=None)

    async def serve() -> None:
        await peer.answer_connect()

    with anyio.fail_after(BOUND):
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            async with client:
                with pytest.raises(ConfigurationError):
                    await client.dial([[{"type": "phone", "params": {"to_number": "+1"}}]])
        assert client.calls == []

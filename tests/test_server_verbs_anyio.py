"""The simulated verbs over a real socket, on both backends: an inbound caller scripted at
injection enters digits into a collect and leaves a recording, and nothing is left running
on the simulator once the call is hung up."""

from __future__ import annotations

import anyio
import pytest
from anyio_support import BOUND, FAST, A, B, barrier, make_client

from relay_anyio import serve_simulator
from relay_proto import Event, UnhandledEvent

pytestmark = pytest.mark.anyio


async def test_a_scripted_inbound_caller_over_a_socket() -> None:
    send, receive = anyio.create_memory_object_stream[UnhandledEvent](16)

    def on_event(event: Event) -> None:
        if isinstance(event, UnhandledEvent) and event.event_type != "calling.call.state":
            send.send_nowait(event)

    script = {
        "input": {"digits": "42", "after": 0.01, "interval": 0.01},
        "record": {"seconds": 0.05},
    }
    async with (
        send,
        receive,
        serve_simulator(scenario=FAST) as sim,
        make_client(sim, contexts=["office"], on_event=on_event) as client,
    ):
        with anyio.fail_after(BOUND):
            await barrier(client)
            await sim.inject_inbound_call(
                context="office", from_number=B, to_number=A, script=script
            )
            call = await anext(client.inbound_calls())
            await call.answer()
            collect = {"control_id": "C", "digits": {"max": 2}}
            assert (await call.execute("calling.collect", collect))["code"] == "200"
            assert (await receive.receive()).params["state"] == "collecting"
            done = await receive.receive()
            assert done.params["result"] == {
                "type": "digit",
                "params": {"digits": "42", "terminator": ""},
            }
            record = {"control_id": "R", "record": {"audio": {"end_silence_timeout": 0.01}}}
            assert (await call.execute("calling.record", record))["code"] == "200"
            assert (await receive.receive()).params["state"] == "recording"
            finished = await receive.receive()
            assert finished.params["state"] == "finished"
            assert finished.params["url"].startswith("https://")
            tap = {
                "control_id": "T",
                "tap": {"type": "audio"},
                "device": {"type": "rtp", "params": {"addr": "127.0.0.1", "port": 9}},
            }
            reply = await call.execute("calling.tap", tap)
            assert reply["source_device"]["type"] == "rtp"
            assert [a.verb for a in sim.live_actions()] == ["tap"]
            await call.hangup()
            await barrier(client)
        assert sim.live_actions() == []
        assert sim.live_calls() == []

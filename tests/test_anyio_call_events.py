"""``Call.on``, ``Call.wait_for`` and ``wait_for_ended(timeout=)`` (the official SDK's raw
event hooks) against the simulator, over real sockets, on both backends."""

from __future__ import annotations

import anyio
import pytest
from anyio_support import BOUND, A, make_client, phone
from test_anyio_verbs_sim import dialled, plan

from relay_anyio import CallEvent, serve_simulator

pytestmark = pytest.mark.anyio


async def test_handlers_get_the_servers_events_of_their_type() -> None:
    async with dialled(plan(A={"record": {"seconds": None}})) as s:
        records: list[CallEvent] = []
        async_seen = anyio.Event()

        async def async_handler(event: CallEvent) -> None:
            if event.params["state"] == "finished":
                async_seen.set()

        def broken(event: CallEvent) -> None:
            raise RuntimeError("a handler's bug stays its own")

        s.call.on("calling.call.record", records.append)
        s.call.on("calling.call.record", broken)
        s.call.on("calling.call.record", async_handler)
        with anyio.fail_after(BOUND):
            action = await s.call.record({})
            async with anyio.create_task_group() as tg:
                finished: list[CallEvent] = []

                async def wait_finished(*, task_status: anyio.abc.TaskStatus[None]) -> None:
                    # registered before ``started``: the stop below cannot outrun it
                    waiting = s.call.wait_for(
                        "calling.call.record", lambda e: e.params.get("state") == "finished"
                    )
                    task_status.started()
                    finished.append(await waiting)

                await tg.start(wait_finished)
                await action.stop()
            await action.wait()
            await async_seen.wait()
        assert finished[0].call_id == s.call.call_id
        assert finished[0].params["control_id"] == action.control_id
        assert [e.params["state"] for e in records] == ["recording", "finished"]
        assert all(e.event_type == "calling.call.record" for e in records)


async def test_state_events_and_timeouts() -> None:
    async with serve_simulator(scenario=plan()) as sim:
        async with make_client(sim) as client:
            with anyio.fail_after(BOUND):
                call = await client.dial([[phone(A)]])
                with pytest.raises(TimeoutError):
                    await call.wait_for("calling.call.state", timeout=0.01)
                with pytest.raises(TimeoutError):
                    await call.wait_for_ended(timeout=0.01)
                states: list[str] = []
                call.on("calling.call.state", lambda e: states.append(e.params["call_state"]))
                await call.hangup()
                assert await call.wait_for_ended(timeout=1) == "hangup"
        assert states == ["ending", "ended"]

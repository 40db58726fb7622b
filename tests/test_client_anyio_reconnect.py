"""``RelayClient`` across socket losses: reconnect, resume, restart and liveness.

PROTOCOL.md section 7: pending dials and live calls survive a reconnect whose resume
succeeded; they fail with ``ConnectionLostError`` only when the resume is refused (a new
protocol, or ``restart: true``). Liveness comes from pings and an inbound-silence watchdog.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import anyio.abc
import pytest
from anyio_support import BOUND, A, B, barrier, freezable_proxy, make_client, phone, scenario

from relay_anyio import (
    CallGoneError,
    CallState,
    ConnectionLostError,
    PlayState,
    RelayClient,
    accept_websocket,
    serve_simulator,
)
from relay_proto import CallStateChanged, Connected, Event
from relay_proto.simulator import Faults

pytestmark = pytest.mark.anyio


class Watch:
    """An ``on_event`` hook: counts handshakes and signals the first ringing leg."""

    def __init__(self) -> None:
        self.ringing = anyio.Event()
        self.connected: list[Connected] = []
        self._waiters: list[tuple[int, anyio.Event]] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, CallStateChanged) and event.state is CallState.RINGING:
            self.ringing.set()
        elif isinstance(event, Connected):
            self.connected.append(event)
            for count, flag in self._waiters:
                if len(self.connected) >= count:
                    flag.set()

    def on_next_ringing(
        self, tg: anyio.abc.TaskGroup, action: Callable[[], Awaitable[None]]
    ) -> None:
        """Run ``action`` as soon as a leg rings (from now on)."""
        self.ringing = anyio.Event()

        async def when_ringing() -> None:
            await self.ringing.wait()
            await action()

        tg.start_soon(when_ringing)

    async def connections(self, count: int) -> None:
        flag = anyio.Event()
        self._waiters.append((count, flag))
        if len(self.connected) >= count:
            flag.set()
        with anyio.fail_after(BOUND):
            await flag.wait()


async def test_dial_survives_a_dropped_socket() -> None:
    plan = scenario({A: {"outcome": "answer", "after": 0.3}})
    watch = Watch()
    async with serve_simulator(scenario=plan) as sim, make_client(sim, on_event=watch) as client:
        async with anyio.create_task_group() as tg:
            watch.on_next_ringing(tg, sim.drop_all)
            with anyio.fail_after(BOUND):
                call = await client.dial(devices=[[phone(A)]])
        assert client.connections == 2
        assert watch.connected[-1].session_restored
        assert call.state is CallState.ANSWERED
        with anyio.fail_after(BOUND):
            await call.hangup()
        assert sim.live_calls() == []


@pytest.mark.parametrize("frames", [3, 4, 5, 6, 7])
async def test_dial_survives_a_drop_after_n_frames(frames: int) -> None:
    # Frames per socket: connect result, authorization state, dial result, then events.
    plan = scenario(
        {A: {"outcome": "answer", "after": 0.1}}, faults=Faults(drop_after_frames=frames)
    )
    async with serve_simulator(scenario=plan) as sim, make_client(sim) as client:
        with anyio.fail_after(BOUND):
            call = await client.dial(devices=[[phone(A)]])
            assert client.connections == 2
            await call.hangup()
        assert sim.live_calls() == []


async def test_live_call_survives_a_dropped_socket() -> None:
    watch = Watch()
    async with serve_simulator(scenario=scenario()) as sim:
        async with make_client(sim, on_event=watch) as client:
            with anyio.fail_after(BOUND):
                call = await client.dial(devices=[[phone(A)]])
                await sim.drop_all()
                await watch.connections(2)
                action = await call.play([{"type": "tts", "text": "still here"}])
                assert await action.wait() is PlayState.FINISHED
                await call.hangup()
            assert client.connections == 2
        assert sim.live_calls() == []


async def test_dial_survives_disconnect_after_dial() -> None:
    plan = scenario(
        {A: {"outcome": "answer", "after": 0.1}}, faults=Faults(disconnect_after_dial=True)
    )
    async with serve_simulator(scenario=plan) as sim, make_client(sim) as client:
        with anyio.fail_after(BOUND):
            call = await client.dial(devices=[[phone(A)]])
            assert client.connections == 2
            await call.hangup()
        assert sim.live_calls() == []


async def test_dial_survives_a_server_disconnect_while_ringing() -> None:
    plan = scenario({A: {"outcome": "answer", "after": 0.3}})
    watch = Watch()
    async with serve_simulator(scenario=plan) as sim, make_client(sim, on_event=watch) as client:
        async with anyio.create_task_group() as tg:
            watch.on_next_ringing(tg, sim.disconnect_all)
            with anyio.fail_after(BOUND):
                call = await client.dial(devices=[[phone(A)]])
        assert client.connections == 2
        with anyio.fail_after(BOUND):
            await call.hangup()
        assert sim.live_calls() == []


async def test_disconnect_with_restart_fails_the_pending_dial() -> None:
    plan = scenario(
        {A: {"outcome": "answer", "after": 0.3}}, faults=Faults(disconnect_after_dial="restart")
    )
    watch = Watch()
    async with serve_simulator(scenario=plan) as sim, make_client(sim, on_event=watch) as client:
        with anyio.fail_after(BOUND), pytest.raises(ConnectionLostError):
            await client.dial(devices=[[phone(A)]])
        assert client.connections == 2
        assert not watch.connected[-1].session_restored
        # The client carries on in the new session.
        with anyio.fail_after(BOUND):
            call = await client.dial(devices=[[phone(B)]])
            await call.hangup()


async def test_refused_resume_fails_the_pending_dial_and_loses_calls() -> None:
    plan = scenario({B: {"outcome": "answer", "after": 0.3}})
    watch = Watch()
    async with serve_simulator(scenario=plan) as sim, make_client(sim, on_event=watch) as client:
        with anyio.fail_after(BOUND):
            call = await client.dial(devices=[[phone(A)]])
        sim.scenario.faults = Faults(refuse_resume=True)
        async with anyio.create_task_group() as tg:
            watch.on_next_ringing(tg, sim.drop_all)
            with anyio.fail_after(BOUND), pytest.raises(ConnectionLostError):
                await client.dial(devices=[[phone(B)]])
        assert client.connections == 2
        with anyio.fail_after(BOUND):
            await call.wait_for_ended()
        assert call.ended
        assert client.calls == []
        with pytest.raises(CallGoneError):
            await call.play([{"type": "tts", "text": "gone"}])
        # The new session hung up what the old one knew of: the answered call and the
        # ringing leg of the failed dial (pings are answered in order, after the hang-ups).
        await barrier(client)
        assert sim.live_calls() == []


async def test_silent_server_is_detected_and_the_client_reconnects() -> None:
    plan = scenario({A: {"outcome": "answer", "after": 0.2}})
    watch = Watch()
    async with serve_simulator(scenario=plan) as sim, freezable_proxy(sim.port) as proxy:
        client = RelayClient(
            project="p",
            token="t",
            url=proxy.url,
            backoff_initial=0.01,
            ping_interval=0.1,
            silence_timeout=0.4,
            on_event=watch,
        )
        async with client:
            with anyio.fail_after(BOUND):
                call = await client.dial(devices=[[phone(A)]])
            proxy.freeze()  # the socket stays open but nothing comes through any more
            await watch.connections(2)
            assert proxy.accepted == 2
            assert watch.connected[-1].session_restored
            with anyio.fail_after(BOUND):
                await call.hangup()
        assert sim.live_calls() == []


async def test_unanswered_pings_are_detected() -> None:
    # Silence watchdog off: only the pings can notice the dead peer.
    async with serve_simulator(scenario=scenario()) as sim, freezable_proxy(sim.port) as proxy:
        watch = Watch()
        client = RelayClient(
            project="p",
            token="t",
            url=proxy.url,
            backoff_initial=0.01,
            ping_interval=0.05,
            silence_timeout=None,
            on_event=watch,
        )
        async with client:
            await watch.connections(1)
            proxy.freeze()
            await watch.connections(2)
            await barrier(client)


@contextlib.asynccontextmanager
async def raw_server(
    handler: Callable[[anyio.abc.SocketStream], Awaitable[None]],
) -> AsyncIterator[str]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        try:
            yield f"ws://127.0.0.1:{port}"
        finally:
            tg.cancel_scope.cancel()


async def _mute(stream: anyio.abc.SocketStream) -> None:
    """Complete the WebSocket handshake, then read and never answer."""
    ws = await accept_websocket(stream)
    with contextlib.suppress(Exception):
        while True:
            await ws.receive_texts()


async def _hang_up_at_once(stream: anyio.abc.SocketStream) -> None:
    """Complete the WebSocket handshake, then close before answering signalwire.connect."""
    ws = await accept_websocket(stream)
    await ws.aclose()


async def _refuse_as_busy(stream: anyio.abc.SocketStream) -> None:
    """Answer signalwire.connect with a generic server error (not a credentials one)."""
    ws = await accept_websocket(stream)
    with contextlib.suppress(Exception):
        [text] = await ws.receive_texts()
        request_id = json.loads(text)["id"]
        await ws.send_texts(
            [
                json.dumps(
                    {
                        "jsonrpc": "2.0",
                        "id": request_id,
                        "error": {"code": -32000, "message": "busy"},
                    }
                )
            ]
        )
        while True:
            await ws.receive_texts()


@pytest.mark.parametrize(
    "handler", [_mute, _hang_up_at_once, _refuse_as_busy], ids=["mute", "closes", "busy"]
)
async def test_a_server_that_never_completes_the_session_fails_async_with(
    handler: Callable[[anyio.abc.SocketStream], Awaitable[None]],
) -> None:
    async with raw_server(handler) as url:
        client = RelayClient(
            project="p", token="t", url=url, backoff_initial=0.01, connect_timeout=0.2
        )
        with anyio.fail_after(BOUND), pytest.raises(ConnectionLostError):
            async with client:
                pytest.fail("entered a client whose session never started")


@pytest.mark.parametrize("calls", [1, 3])
async def test_exit_right_after_a_drop_still_hangs_up(calls: int) -> None:
    # The hang-ups of __aexit__ may be written to a socket that is already dead: they
    # must go out again on the next socket, within cleanup_timeout.
    async with serve_simulator(scenario=scenario()) as sim:
        async with make_client(sim, cleanup_timeout=5.0) as client:
            with anyio.fail_after(BOUND):
                for index in range(calls):
                    await client.dial(devices=[[phone(f"+1555000010{index}")]])
            await sim.drop_all()
        assert sim.live_calls() == []
        assert {c.end_reason for c in sim.all_calls()} == {"hangup"}


async def test_exit_while_reconnecting_still_hangs_up() -> None:
    watch = Watch()
    async with serve_simulator(scenario=scenario()) as sim:
        async with make_client(sim, on_event=watch, cleanup_timeout=5.0) as client:
            with anyio.fail_after(BOUND):
                await client.dial(devices=[[phone(A)]])
            await sim.drop_all()
            await watch.connections(2)
            await sim.drop_all()
        assert sim.live_calls() == []

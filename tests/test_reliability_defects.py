"""Issue 8 regressions over real sockets, on asyncio and trio, through public APIs only.

Each test shows one defect of the issue (it failed before the fix). The simulator is
driven through its dict scenario; misbehaviour it cannot script comes from ``hostile_peer``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import anyio
import anyio.abc
import pytest
from hostile_peer import BOUND, Peer, event, hostile_server

from relay_anyio import (
    Call,
    ConfigurationError,
    ConnectionLostError,
    DialTimeoutError,
    Limits,
    RelayClient,
    RelayError,
    RequestTimeoutError,
    SimulatorServer,
    Timeouts,
    serve_simulator,
)
from relay_proto import CallState, CallStateChanged, DisconnectRequested, Event, PlayStateChanged

pytestmark = pytest.mark.anyio

FAST: dict[str, Any] = {
    "default": {"outcome": "answer", "after": 0.05},
    "min_play_seconds": 0.05,
    "play_seconds_per_char": 0.002,
}
JSONObject = dict[str, Any]
A, B = "+15550000001", "+15550000002"
SILENCE = [{"type": "silence", "params": {"duration": 60}}]


def phone(to: str) -> dict[str, Any]:
    return {"type": "phone", "params": {"from_number": "+15551230000", "to_number": to}}


def client_of(url: str, **options: Any) -> RelayClient:
    defaults: dict[str, Any] = {
        "project": "p",
        "token": "t",
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "cleanup_timeout": 0.5,
        "close_timeout": 0.5,
        "connect_timeout": 2.0,
    }
    return RelayClient(url=url, **{**defaults, **options})


class Gate:
    """Socket writes wait while the gate is closed (a stalled peer / full send buffer)."""

    def __init__(self) -> None:
        self._open = anyio.Event()
        self._open.set()
        self.blocked = anyio.Event()

    def close(self) -> None:
        self._open = anyio.Event()

    def open(self) -> None:
        self._open.set()

    async def pass_through(self) -> None:
        if not self._open.is_set():
            self.blocked.set()
            await self._open.wait()


class GatedStream(anyio.abc.ByteStream):
    def __init__(self, inner: anyio.abc.ByteStream, gate: Gate) -> None:
        self._inner, self._gate = inner, gate

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self._inner.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        await self._gate.pass_through()
        await self._inner.send(item)

    async def send_eof(self) -> None:
        await self._inner.send_eof()

    async def aclose(self) -> None:
        await self._inner.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Any]:
        return self._inner.extra_attributes


def gate_sockets(monkeypatch: pytest.MonkeyPatch) -> Gate:
    """Every socket the client opens from now on writes through one ``Gate``."""
    gate, real = Gate(), anyio.connect_tcp

    async def connect_tcp(*args: Any, **kwargs: Any) -> GatedStream:
        return GatedStream(await real(*args, **kwargs), gate)

    monkeypatch.setattr(anyio, "connect_tcp", connect_tcp)
    return gate


async def dial(client: RelayClient, to: str = A, **options: Any) -> Call:
    with anyio.fail_after(BOUND):
        return await client.dial([[phone(to)]], **options)


# ------------------------------------------------------------------ item 1


async def test_play_control_404_does_not_forget_the_call() -> None:
    async with serve_simulator(scenario=FAST) as sim:
        async with client_of(sim.url) as client:
            call = await dial(client)
            with anyio.fail_after(BOUND):
                action = await call.play([{"type": "tts", "text": "hi"}])
                await action.wait()
                with contextlib.suppress(RelayError):
                    await action.stop()  # the play is over: 404 "Play not found"
            assert not call.ended
        assert sim.live_calls() == []


# ------------------------------------------------------------------ background task crash


def inbound(call_id: str) -> str:
    params = (
        f'{{"call_id":"{call_id}","node_id":"n","tag":"t-{call_id}","call_state":"ringing",'
        '"direction":"inbound","device":{"type":"phone","params":{"from_number":"+1555",'
        '"to_number":"+1666"}},"context":"office"}'
    )
    return event("calling.call.receive", params, f"ev-{call_id}")


async def disconnect(peer: Peer) -> None:
    """``signalwire.disconnect`` (the socket stays open): requests now wait for a socket."""
    await peer.send(
        {"jsonrpc": "2.0", "id": "bye", "method": "signalwire.disconnect", "params": {}}
    )
    while (await peer.recv()).get("id") != "bye":
        pass


async def test_refusal_with_max_queued_full_does_not_crash() -> None:
    done = anyio.Event()

    async def script(peer: Peer) -> None:
        await peer.session()
        await disconnect(peer)
        for call_id in ("in-1", "in-2"):  # both refused: inbound_buffer=0
            await peer.send(inbound(call_id))
        await peer.ping_client()
        done.set()
        await peer.serve()

    async with hostile_server(script) as server:
        client = client_of(server.url, contexts=["office"], inbound_buffer=0, max_queued=1)
        with contextlib.suppress(RelayError):
            async with client:
                with anyio.fail_after(BOUND):
                    await done.wait()


async def test_exit_hangups_with_max_queued_full_do_not_crash() -> None:
    done = anyio.Event()

    async def script(peer: Peer) -> None:
        await peer.session()
        await peer.send(inbound("in-1"))  # taken by the user below
        await peer.ping_client()
        await disconnect(peer)
        await peer.send(inbound("in-2"))  # buffered: a live call at exit
        await peer.send(inbound("in-3"))  # refused: its hang-up fills max_queued
        await peer.ping_client()
        done.set()
        await peer.serve()

    async with hostile_server(script) as server:
        client = client_of(server.url, contexts=["office"], inbound_buffer=1, max_queued=1)
        with contextlib.suppress(RelayError):
            async with client:
                with anyio.fail_after(BOUND):
                    await anext(aiter(client.inbound_calls()))
                    await done.wait()


# ------------------------------------------------------------------ unbounded waits

#: How long a wait the issue calls unbounded may take once it is bounded.
WAIT_BOUND = 4.0


async def test_hangup_is_bounded_when_the_server_never_ends_the_call() -> None:
    scenario = {**FAST, "faults": {"ignore_end": True}}
    async with (
        serve_simulator(scenario=scenario) as sim,
        client_of(sim.url, request_timeout=1.0) as client,
    ):
        call = await dial(client)
        with anyio.move_on_after(WAIT_BOUND) as scope:
            await call.hangup()
        assert not scope.cancelled_caught, "hangup() still waiting"
        assert call.ended
        assert call.end_reason == "hangup"
        assert client.calls == []


async def test_unanswered_request_is_bounded() -> None:
    async def script(peer: Peer) -> None:
        await peer.session()
        while True:  # answers pings (the link is alive), nothing else
            message = await peer.recv()
            if message.get("method") == "signalwire.ping":
                await peer.answer(message)

    async with (
        hostile_server(script) as server,
        client_of(server.url, ping_interval=0.5, request_timeout=1.0) as client,
    ):
        with anyio.move_on_after(WAIT_BOUND) as scope, pytest.raises(RequestTimeoutError):
            await client.execute("signalwire.noop", {})
        assert not scope.cancelled_caught, "execute() still waiting"
        assert isinstance(RequestTimeoutError("x"), TimeoutError)
        assert client.connections == 1  # the socket was not torn down
        with anyio.fail_after(BOUND):
            await client.ping()


async def test_a_play_that_times_out_is_stopped() -> None:
    pair: list[JSONObject] = []

    async def script(peer: Peer) -> None:
        await peer.session()
        await peer.send(inbound("in-1"))
        pair.append(await peer.request("calling.play"))  # never answered
        pair.append(await peer.request("calling.play.stop"))
        await peer.serve()

    async with (
        hostile_server(script) as server,
        client_of(server.url, contexts=["office"], request_timeout=0.5) as client,
    ):
        with anyio.fail_after(BOUND):
            call = await anext(aiter(client.inbound_calls()))
            with pytest.raises(RequestTimeoutError):
                await call.play(SILENCE)
            while len(pair) < 2:
                await client.ping()
    play, stop = pair
    assert stop["params"]["control_id"] == play["params"]["control_id"]


def test_request_timeout_and_max_handlers_are_options() -> None:
    for bad in ({"request_timeout": 0}, {"max_handlers": 0}, {"max_handlers": 1.5}):
        with pytest.raises(ConfigurationError):
            client_of("ws://127.0.0.1:1", **bad)
    assert Timeouts().request == 30.0
    assert Limits().max_handlers == 64
    RelayClient(
        project="p",
        token="t",
        url="ws://127.0.0.1:1",
        timeouts=Timeouts(request=2.0),
        limits=Limits(max_handlers=1),
    )


# ------------------------------------------------------------------ cancellation


async def test_cancelled_play_leaves_no_running_play(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = gate_sockets(monkeypatch)
    plays: dict[str, PlayStateChanged] = {}

    def record(event: Event) -> None:
        if isinstance(event, PlayStateChanged):
            plays[event.control_id] = event

    async with serve_simulator(scenario=FAST) as sim:
        async with client_of(sim.url, on_event=record) as client:
            call = await dial(client)
            gate.close()
            async with anyio.create_task_group() as tg:
                tg.start_soon(call.play, SILENCE)
                with anyio.fail_after(BOUND):
                    await gate.blocked.wait()  # its frame is not written yet
                    await anyio.wait_all_tasks_blocked()
                tg.cancel_scope.cancel()
            gate.open()
            with anyio.fail_after(BOUND):
                await client.ping()  # every frame written before has been handled
            with anyio.move_on_after(WAIT_BOUND):
                while any(not p.state.terminal for p in plays.values()):
                    await client.ping()
            running = [p.control_id for p in plays.values() if not p.state.terminal]
            assert running == [], "a play nobody holds is running"
        assert sim.live_calls() == []


async def test_slow_write_does_not_delay_dial_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    gate = gate_sockets(monkeypatch)
    ringing = anyio.Event()

    def watch(event: Event) -> None:
        if isinstance(event, CallStateChanged) and event.state is CallState.RINGING:
            ringing.set()

    scenario = {**FAST, "destinations": {A: {"outcome": "no_answer"}}}
    outcomes: dict[str, float] = {}
    async with serve_simulator(scenario=scenario) as sim:
        client = client_of(sim.url, on_event=watch, write_timeout=3.5)
        async with client, anyio.create_task_group() as tg:

            async def timed(name: str, limit: float) -> None:
                with contextlib.suppress(DialTimeoutError, ConnectionLostError):
                    await client.dial([[phone(A)]], dial_timeout=limit)
                outcomes[name] = anyio.current_time()

            tg.start_soon(timed, "first", 1.0)
            with anyio.fail_after(BOUND):
                await ringing.wait()  # the first dial has a leg: its timeout writes a hang-up
            gate.close()
            started = anyio.current_time()
            with anyio.fail_after(BOUND):
                await timed("second", 1.5)
            gate.open()
    assert outcomes["second"] - started < 1.5 + 1.0, "the second dial timed out late"


# ------------------------------------------------------------------ inbound handlers


async def test_on_call_handlers_are_bounded() -> None:
    release, running = anyio.Event(), [0]

    async def handler(call: Call) -> None:
        running[0] += 1
        await release.wait()

    async with serve_simulator(scenario=FAST) as sim:
        limits = {"inbound_buffer": 2, "max_handlers": 2, "inbound_overflow": "busy"}
        client = client_of(sim.url, contexts=["office"], **limits)
        client.on_call(handler)
        try:
            async with client:
                for n in range(10):
                    await sim.inject_inbound_call(
                        context="office", from_number="+1555", to_number=f"+1666{n}"
                    )
                with anyio.fail_after(BOUND):
                    await client.ping()  # the client has seen every call ...
                    await client.ping()  # ... and what it wrote about them was handled
                assert running[0] == 2
                assert len(sim.live_calls()) <= 4
        finally:
            release.set()


# ------------------------------------------------------------------ messages


async def test_unresolvable_host_is_named() -> None:
    client = RelayClient(
        project="p",
        token="t",
        url="ws://nonexistent.invalid:8765",
        allow_insecure=True,
        connect_attempts=1,
        connect_timeout=2.0,
    )
    with anyio.fail_after(BOUND), pytest.raises(ConnectionLostError) as caught:
        async with client:
            pass
    text = str(caught.value)
    assert "nonexistent.invalid" in text
    assert "resolve" in text.lower()


async def test_the_simulator_is_clean_after_a_plain_run() -> None:
    """The counterpart the fixes must keep: no defect, no leak."""
    async with serve_simulator(scenario=FAST) as sim:
        await _dial_and_hang_up(sim)
        assert sim.live_calls() == []


async def _dial_and_hang_up(sim: SimulatorServer) -> None:
    ended: list[str] = []

    def watch(event: Event) -> None:
        if isinstance(event, DisconnectRequested):
            ended.append("disconnect")

    async with client_of(sim.url, on_event=watch) as client:
        call = await dial(client, B)
        with anyio.fail_after(BOUND):
            await call.hangup()
        assert call.ended
    assert ended == []

"""Helpers for the adapter's tests (``test_client_anyio*``, ``test_cancellation``).

* ``phone`` / ``FAST``: devices and a scenario with short durations so the suite stays fast;
* ``make_client``: a ``RelayClient`` for a simulator with fast backoff and bounded cleanup;
* ``barrier``: a round trip on the client's socket. The simulator handles one socket's
  frames in order, so once the ping's reply is back, every frame written before it (the
  hang-ups of a cancelled dial, say) has been processed: no sleeps needed;
* ``FreezableProxy``: a TCP proxy whose connections can be frozen (kept open, nothing
  forwarded), for liveness tests;
* ``SlowStream``: an httpcore-style slow fake stream around a real one, whose writes can
  be made to block forever; ``patch_connect_tcp`` makes the client's sockets such streams;
* ``ScriptedTransport``: a socket whose peer is the test, given to the client through its
  public ``transport_factory`` option, for races a live simulator cannot produce on demand.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import anyio
import anyio.abc
import pytest

from relay_anyio import ConnectionLostError, RelayClient, SimulatorServer
from relay_proto.simulator import Faults, Scenario

FROM = "+15551230000"
A = "+15550000001"
B = "+15550000002"
C = "+15550000003"

#: Everything answers after 50 ms; plays are short.
FAST: dict[str, Any] = {
    "default": {"outcome": "answer", "after": 0.05},
    "min_play_seconds": 0.05,
    "play_seconds_per_char": 0.002,
}

#: Upper bound for any single await in a test (generous: CI machines are slow).
BOUND = 10.0


def phone(to: str, timeout: int = 30, **extra: Any) -> dict[str, Any]:
    return {
        "type": "phone",
        "params": {"from_number": FROM, "to_number": to, "timeout": timeout, **extra},
    }


def scenario(
    destinations: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    faults: Faults | None = None,
    **extra: Any,
) -> Scenario:
    """``FAST`` with per-destination outcomes (dict form) and optional faults."""
    plan = Scenario.from_dict({**FAST, "destinations": dict(destinations or {}), **extra})
    if faults is not None:
        plan.faults = faults
    return plan


def make_client(sim: SimulatorServer, **options: Any) -> RelayClient:
    options.setdefault("project", "project")
    options.setdefault("token", "token")
    options.setdefault("backoff_initial", 0.01)
    options.setdefault("backoff_max", 0.05)
    options.setdefault("cleanup_timeout", 2.0)
    options.setdefault("close_timeout", 1.0)
    return RelayClient(url=sim.url, **options)


async def barrier(client: RelayClient) -> None:
    """Every frame this client wrote so far has been handled by the server."""
    with anyio.fail_after(BOUND):
        await client.ping()


# --------------------------------------------------------------------------- proxy


class FreezableProxy:
    """A TCP proxy to ``target_port``; ``freeze()`` stalls its current connections.

    A frozen connection stays open but forwards nothing either way (a peer that went
    silent without closing). Connections accepted later forward normally.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.accepted = 0
        self._frozen: list[anyio.Event] = []

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def freeze(self) -> None:
        for flag in self._frozen:
            flag.set()

    async def _pump(
        self,
        source: anyio.abc.ByteStream,
        sink: anyio.abc.ByteStream,
        frozen: anyio.Event,
    ) -> None:
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            while True:
                data = await source.receive()
                if frozen.is_set():
                    await anyio.sleep_forever()
                await sink.send(data)
        await anyio.aclose_forcefully(sink)

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        self.accepted += 1
        frozen = anyio.Event()
        self._frozen.append(frozen)
        server = await anyio.connect_tcp("127.0.0.1", self.target_port)
        async with client, server, anyio.create_task_group() as tg:
            tg.start_soon(self._pump, client, server, frozen)
            tg.start_soon(self._pump, server, client, frozen)


@contextlib.asynccontextmanager
async def freezable_proxy(target_port: int) -> AsyncIterator[FreezableProxy]:
    proxy = FreezableProxy(target_port)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    proxy.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, proxy._handle)
        try:
            yield proxy
        finally:
            tg.cancel_scope.cancel()


# --------------------------------------------------------------------------- slow streams


class SlowStream(anyio.abc.ByteStream):
    """A real byte stream whose writes block forever once ``block_writes`` is set."""

    def __init__(self, inner: anyio.abc.ByteStream, block_writes: anyio.Event) -> None:
        self._inner = inner
        self._block_writes = block_writes
        self.blocked_writes = 0

    async def receive(self, max_bytes: int = 65536) -> bytes:
        return await self._inner.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        if self._block_writes.is_set():
            self.blocked_writes += 1
            await anyio.sleep_forever()
        await self._inner.send(item)

    async def send_eof(self) -> None:
        await self._inner.send_eof()

    async def aclose(self) -> None:
        await self._inner.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self._inner.extra_attributes


def patch_connect_tcp(
    monkeypatch: pytest.MonkeyPatch, block_writes: anyio.Event
) -> list[SlowStream]:
    """Make every ``anyio.connect_tcp`` from now on return a ``SlowStream``."""
    real = anyio.connect_tcp
    streams: list[SlowStream] = []

    async def connect_tcp(*args: Any, **kwargs: Any) -> SlowStream:
        stream = SlowStream(await real(*args, **kwargs), block_writes)
        streams.append(stream)
        return stream

    monkeypatch.setattr(anyio, "connect_tcp", connect_tcp)
    return streams


# --------------------------------------------------------------------------- scripted peer


class ScriptedTransport:
    """A ``relay_anyio.Transport`` whose peer is the test (for ``transport_factory``).

    The test reads what the client wrote with ``next_request()`` and hands the client
    exactly the batches it wants with ``deliver()``: one call is one read of the socket.
    """

    def __init__(self) -> None:
        self._inbox_send, self._inbox = anyio.create_memory_object_stream[list[str]](64)
        self._outbox_send, self._outbox = anyio.create_memory_object_stream[str](1024)

    async def connect(self) -> ScriptedTransport:
        """The ``transport_factory``: this one socket (a second attempt finds it closed)."""
        return self

    # the client's side
    async def receive_texts(self) -> list[str]:
        try:
            return await self._inbox.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise ConnectionLostError("the scripted peer is gone", code=1006) from None

    async def send_from(self, drain: Callable[[], Iterable[str]]) -> None:
        for text in drain():
            try:
                self._outbox_send.send_nowait(text)
            except anyio.ClosedResourceError:
                raise ConnectionLostError("the scripted peer is gone", code=1006) from None

    async def aclose(self, *, timeout: float) -> None:  # noqa: ASYNC109
        await self.abort()

    async def abort(self) -> None:
        for stream in (self._inbox_send, self._inbox, self._outbox_send, self._outbox):
            stream.close()

    # the test's side
    def deliver(self, *texts: str) -> None:
        """Hand the client ``texts`` as one read."""
        self._inbox_send.send_nowait(list(texts))

    async def next_request(self) -> dict[str, Any]:
        """The next request the client wrote (replies, such as event acks, are skipped)."""
        while True:
            frame: dict[str, Any] = json.loads(await self._outbox.receive())
            if "method" in frame:
                return frame

    def client(self, **options: Any) -> RelayClient:
        """A ``RelayClient`` on this transport (no silence watchdog, no exit hang-ups)."""
        options.setdefault("project", "p")
        options.setdefault("token", "t")
        options.setdefault("silence_timeout", None)
        options.setdefault("hangup_on_exit", False)
        return RelayClient(url="ws://127.0.0.1:9", transport_factory=self.connect, **options)

    async def answer_connect(self) -> dict[str, Any]:
        """Take the client's ``signalwire.connect`` and accept it; return that request."""
        connect = await self.next_request()
        assert connect["method"] == "signalwire.connect"
        body = {"identity": "id@example", "protocol": "signalwire_SIG_1", "authorization": {}}
        self.deliver(json.dumps({"jsonrpc": "2.0", "id": connect["id"], "result": body}))
        return connect

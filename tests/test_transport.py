"""The WebSocket (``relay_anyio._websocket``, opened by ``_handshake``) and the error hierarchy.

Three kinds of peer: our own ``accept_websocket`` over real loopback TCP; an independent
peer (wsproto driven by hand over raw TCP, so frames are checked by a second implementation
of the framing); and a scripted in-memory stream for exact call counts, write batching and
cancellation. Every async test runs on asyncio and trio and is bounded by ``fail_after``.
(wsproto is the independent peer here; the codec itself is cross-checked against it in
``test_framing.py``.)
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
import wsproto.utilities
from anyio.streams.tls import TLSStream
from hostile_peer import certificate as make_certificate
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    Request,
    TextMessage,
)

from relay_anyio import WebSocket, accept_websocket, connect_websocket
from relay_anyio._errors import (
    AuthenticationError,
    CallGoneError,
    ConfigurationError,
    ConnectionLostError,
    DialFailedError,
    DialTimeoutError,
    ProtocolViolationError,
    RelayError,
    RequestError,
    request_error,
)
from relay_anyio._handshake import feed_head
from relay_anyio._redact import Redactor
from relay_anyio._translate import translate_error
from relay_anyio._url import ParsedURL, build_url
from relay_anyio._websocket import Framer
from relay_proto import CallState, Leg

pytestmark = pytest.mark.anyio

TIMEOUT = 10.0
# ------------------------------------------------------------------------ in-memory peer


class FakeStream(anyio.abc.ByteStream):
    """A scripted byte stream: counts reads and writes; writes can be held at a gate."""

    def __init__(self, incoming: Iterable[bytes] = ()) -> None:
        self.incoming: deque[bytes] = deque(incoming)
        self.sent: list[bytes] = []
        self.receive_calls = 0
        self.closed = False
        self.eof = False
        self.write_gate: anyio.Event | None = None
        self.write_started = anyio.Event()
        self._arrived = anyio.Event()

    def feed(self, data: bytes) -> None:
        self.incoming.append(data)
        self._arrived.set()

    async def receive(self, max_bytes: int = 65536) -> bytes:
        self.receive_calls += 1
        await anyio.lowlevel.checkpoint()
        while not self.incoming:
            if self.closed:
                raise anyio.ClosedResourceError
            if self.eof:
                raise anyio.EndOfStream
            self._arrived = anyio.Event()
            await self._arrived.wait()
        return self.incoming.popleft()

    async def send(self, item: bytes) -> None:
        if self.closed:
            raise anyio.ClosedResourceError
        self.write_started.set()
        if self.write_gate is None:
            await anyio.lowlevel.checkpoint()
        else:
            await self.write_gate.wait()
        self.sent.append(bytes(item))

    async def send_eof(self) -> None:
        raise NotImplementedError

    async def aclose(self) -> None:
        self.closed = True
        self._arrived.set()


def fake_pair(
    stream: FakeStream,
    *,
    max_message_size: int = 1000,
    write_timeout: float = 5.0,
    redactor: Redactor | None = None,
) -> tuple[WebSocket, WSConnection]:
    """A client ``WebSocket`` on ``stream`` and the wsproto server that shook hands with it."""
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="test", target="/")))
    assert isinstance(next(server.events()), Request)
    client.receive_data(server.send(AcceptConnection()))
    assert isinstance(next(client.events()), AcceptConnection)
    framer = Framer(client=True, max_message_size=max_message_size)
    ws = WebSocket(
        stream,
        framer,
        write_timeout=write_timeout,
        description="test",
        redactor=redactor,
    )
    return ws, server


def decode(peer: WSConnection, data: bytes) -> list[Event]:
    peer.receive_data(data)
    return list(peer.events())


def encode(peer: WSConnection, *events: Event) -> bytes:
    return b"".join(peer.send(event) for event in events)


# ------------------------------------------------------------------------ loopback peers


@asynccontextmanager
async def listening(
    scheme: str = "ws",
) -> AsyncIterator[tuple[ParsedURL, anyio.abc.SocketListener]]:
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    async with listener:
        tcp = cast(anyio.abc.SocketListener, listener.listeners[0])
        port = tcp.extra(anyio.abc.SocketAttribute.local_port)
        yield build_url(url=f"{scheme}://127.0.0.1:{port}"), tcp


@asynccontextmanager
async def ws_pair(**client_options: Any) -> AsyncIterator[tuple[WebSocket, WebSocket]]:
    """Our client connected to our server over loopback TCP."""
    accepted: list[WebSocket] = []
    async with listening() as (url, tcp):

        async def accept() -> None:
            stream = await tcp.accept()
            accepted.append(await accept_websocket(stream))

        async with anyio.create_task_group() as tg:
            tg.start_soon(accept)
            client = await connect_websocket(url, **client_options)
    try:
        yield client, accepted[0]
    finally:
        await client.abort()
        await accepted[0].abort()


class RawPeer:
    """An independent WebSocket server: wsproto driven by hand over a raw TCP stream."""

    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.SERVER)
        self.pending: deque[Event] = deque()

    async def handshake(self, *early: Event) -> None:
        while not isinstance(await self.next_event(), Request):
            pass
        data = self.ws.send(AcceptConnection()) + encode(self.ws, *early)
        await self.stream.send(data)

    async def send(self, *events: Event) -> None:
        """All the events' frames in one write."""
        await self.stream.send(encode(self.ws, *events))

    async def next_event(self) -> Event:
        while not self.pending:
            try:
                data: bytes | None = await self.stream.receive()
            except anyio.EndOfStream:
                data = None
            self.ws.receive_data(data)
            self.pending.extend(self.ws.events())
        return self.pending.popleft()


@asynccontextmanager
async def raw_pair(
    *early: Event, **client_options: Any
) -> AsyncIterator[tuple[WebSocket, RawPeer]]:
    """Our client connected to a ``RawPeer``; ``early`` frames follow the 101 in one write."""
    peers: list[RawPeer] = []
    async with listening() as (url, tcp):

        async def accept() -> None:
            peer = RawPeer(await tcp.accept())
            peers.append(peer)
            await peer.handshake(*early)

        async with anyio.create_task_group() as tg:
            tg.start_soon(accept)
            client = await connect_websocket(url, **client_options)
    try:
        yield client, peers[0]
    finally:
        await client.abort()
        await peers[0].stream.aclose()


# ----------------------------------------------------------------------------- round trips


async def test_handshake_and_text_round_trip() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (client, server):
            await client.send_text("hello")
            assert await server.receive_text() == "hello"
            await server.send_texts(["ünïcødé ☎ 𝄞", "second"])
            assert await client.receive_text() == "ünïcødé ☎ 𝄞"
            assert await client.receive_text() == "second"
            assert not client.closed
            assert "open" in repr(client)


async def test_sizes_on_the_length_boundaries_round_trip() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (client, server):
            texts = ["", "a", "é" * 63, "x" * 125, "y" * 126, "z" * 65535, "☎" * 30000]
            await client.send_texts(texts)
            received: list[str] = []
            while len(received) < len(texts):
                received += await server.receive_texts()
            assert received == texts
            await server.send_texts(texts[::-1])
            received = []
            while len(received) < len(texts):
                received += await client.receive_texts()
            assert received == texts[::-1]
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.aclose, 4001, "bye")
                with pytest.raises(ConnectionLostError, match="bye") as info:
                    await server.receive_text()
            assert info.value.code == 4001


async def test_many_messages_arrive_in_order_over_tcp() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (client, server):
            sent = [f'{{"n":{n}}}' for n in range(500)]
            await client.send_texts(sent[:250])
            await client.send_texts(sent[250:])
            received: list[str] = []
            while len(received) < len(sent):
                batch = await server.receive_texts()
                assert batch
                received += batch
            assert received == sent


async def test_large_message_round_trip() -> None:
    big = "x" * (3 * 1024 * 1024) + "é"
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (client, server), anyio.create_task_group() as tg:
            tg.start_soon(server.send_text, big)
            assert await client.receive_text() == big


async def test_send_texts_is_one_write_of_valid_frames() -> None:
    with anyio.fail_after(TIMEOUT):
        stream = FakeStream()
        ws, peer = fake_pair(stream)
        await ws.send_texts(["a", "bé", "c" * 300])
        await ws.send_texts([])
        assert len(stream.sent) == 1
        events = decode(peer, stream.sent[0])
        assert [(e.data, e.message_finished) for e in events if isinstance(e, TextMessage)] == [
            ("a", True),
            ("bé", True),
            ("c" * 300, True),
        ]
        assert len(events) == 3


async def test_concurrent_senders_never_interleave() -> None:
    with anyio.fail_after(TIMEOUT):
        stream = FakeStream()  # every write yields: senders really contend for the lock
        ws, peer = fake_pair(stream)
        async with anyio.create_task_group() as tg:
            for task in range(20):
                tg.start_soon(ws.send_texts, [f"{task}-{part}" for part in range(3)])
        assert len(stream.sent) == 20
        tasks_seen = set()
        for write in stream.sent:
            texts = [e.data for e in decode(peer, write) if isinstance(e, TextMessage)]
            owner = texts[0].split("-")[0]
            assert texts == [f"{owner}-{part}" for part in range(3)]
            tasks_seen.add(owner)
        assert len(tasks_seen) == 20


async def _until_waiting_for_the_lock(ws: WebSocket) -> None:
    """Yield until a second sender is queued on the send lock (bounded by the caller)."""
    while ws._send_lock.statistics().tasks_waiting == 0:
        await anyio.lowlevel.checkpoint()


async def test_send_from_drains_inside_the_lock() -> None:
    with anyio.fail_after(TIMEOUT):
        stream = FakeStream()
        stream.write_gate = anyio.Event()
        ws, peer = fake_pair(stream)
        drained: list[str] = []

        def drain() -> list[str]:
            drained.append("now")
            return ["from the outbox"]

        async with anyio.create_task_group() as tg:
            tg.start_soon(ws.send_text, "first")
            await stream.write_started.wait()  # "first" holds the lock, blocked in its write
            tg.start_soon(ws.send_from, drain)
            await _until_waiting_for_the_lock(ws)
            assert drained == []
            stream.write_gate.set()
        assert drained == ["now"]
        texts = [e.data for w in stream.sent for e in decode(peer, w) if isinstance(e, TextMessage)]
        assert texts == ["first", "from the outbox"]


async def test_cancelled_while_waiting_for_the_lock_sends_nothing() -> None:
    with anyio.fail_after(TIMEOUT):
        stream = FakeStream()
        stream.write_gate = anyio.Event()
        ws, peer = fake_pair(stream)
        drained: list[str] = []

        def drain() -> list[str]:
            drained.append("called")
            return ["never"]

        async def waiter(scope: anyio.CancelScope) -> None:
            with scope:
                await ws.send_from(drain)

        scope = anyio.CancelScope()
        async with anyio.create_task_group() as tg:
            tg.start_soon(ws.send_text, "first")
            await stream.write_started.wait()
            tg.start_soon(waiter, scope)
            await _until_waiting_for_the_lock(ws)
            scope.cancel()
            await anyio.lowlevel.checkpoint()
            stream.write_gate.set()
        assert scope.cancelled_caught
        assert drained == []
        texts = [e.data for e in decode(peer, b"".join(stream.sent)) if isinstance(e, TextMessage)]
        assert texts == ["first"]


async def test_cancelled_write_in_progress_still_completes() -> None:
    with anyio.fail_after(TIMEOUT):
        stream = FakeStream()
        stream.write_gate = anyio.Event()
        ws, peer = fake_pair(stream)
        scope = anyio.CancelScope()

        async def sender() -> None:
            with scope:
                await ws.send_texts(["whole", "batch"])

        async with anyio.create_task_group() as tg:
            tg.start_soon(sender)
            await stream.write_started.wait()
            scope.cancel()  # the write is shielded: it must not be cut in half
            await anyio.lowlevel.checkpoint()
            stream.write_gate.set()
        stream.write_gate = None
        await ws.send_text("still usable")
        texts = [e.data for w in stream.sent for e in decode(peer, w) if isinstance(e, TextMessage)]
        assert texts == ["whole", "batch", "still usable"]
        assert not ws.closed


async def test_write_timeout_declares_the_socket_lost() -> None:
    with anyio.fail_after(TIMEOUT):
        stream = FakeStream()
        stream.write_gate = anyio.Event()  # never set: the peer stopped reading
        ws, _ = fake_pair(stream, write_timeout=0.05)
        with pytest.raises(ConnectionLostError, match="timed out"):
            await ws.send_text("stuck")
        assert ws.closed
        assert stream.closed
        with pytest.raises(ConnectionLostError, match="timed out"):
            await ws.send_text("again")


async def test_failed_write_is_connection_lost() -> None:
    with anyio.fail_after(TIMEOUT):
        stream = FakeStream()
        ws, _ = fake_pair(stream)
        await stream.aclose()  # the next write raises ClosedResourceError
        with pytest.raises(ConnectionLostError, match="send failed") as info:
            await ws.send_texts(["a", "b"])
        assert isinstance(info.value.__cause__, anyio.ClosedResourceError)
        assert ws.closed
        with pytest.raises(ConnectionLostError, match="send failed"):
            await ws.receive_text()


async def test_sending_while_closing_is_refused() -> None:
    with anyio.fail_after(TIMEOUT):
        stream = FakeStream()
        ws, peer = fake_pair(stream)
        async with anyio.create_task_group() as tg:
            tg.start_soon(ws.aclose)
            await stream.write_started.wait()  # our close frame is out; no answer yet
            with pytest.raises(ConnectionLostError, match="closing"):
                await ws.send_text("late")
            stream.feed(encode(peer, CloseConnection(code=1000)))  # the peer answers
        assert ws.closed
        assert decode(peer, stream.sent[0]) == [CloseConnection(code=1000, reason="")]


# ----------------------------------------------------------------------------- receiving


async def test_buffered_messages_are_returned_without_another_read() -> None:
    with anyio.fail_after(TIMEOUT):
        stream = FakeStream()
        ws, peer = fake_pair(stream)
        stream.feed(encode(peer, *(TextMessage(data=f"m{n}") for n in range(3))))
        assert [await ws.receive_text() for _ in range(3)] == ["m0", "m1", "m2"]
        assert stream.receive_calls == 1
        stream.feed(encode(peer, *(TextMessage(data=f"b{n}") for n in range(5))))
        assert await ws.receive_texts() == [f"b{n}" for n in range(5)]
        assert stream.receive_calls == 2


async def test_fragmented_message_with_a_ping_inside_is_reassembled() -> None:
    with anyio.fail_after(TIMEOUT):
        async with raw_pair() as (client, peer):
            await peer.send(
                TextMessage(data="frag", message_finished=False),
                TextMessage(data="mén", message_finished=False),
                Ping(payload=b"p"),
                TextMessage(data="ted", message_finished=True),
            )
            assert await client.receive_text() == "fragménted"
            assert await peer.next_event() == Pong(payload=b"p")


async def test_ping_is_answered_with_a_pong() -> None:
    with anyio.fail_after(TIMEOUT):
        async with raw_pair() as (client, peer):
            await peer.send(
                Pong(payload=b"unsolicited"), Ping(payload=b"xyz"), TextMessage(data="after")
            )
            assert await client.receive_text() == "after"
            assert await peer.next_event() == Pong(payload=b"xyz")
            await client.send_text("reply")
            event = await peer.next_event()
            assert isinstance(event, TextMessage)
            assert event.data == "reply"


async def test_frames_right_after_the_handshake_are_not_lost() -> None:
    with anyio.fail_after(TIMEOUT):
        async with raw_pair(TextMessage(data="early"), Ping(payload=b"e")) as (client, peer):
            assert await client.receive_text() == "early"
            assert await peer.next_event() == Pong(payload=b"e")


async def test_binary_message_is_reported_and_the_socket_stays_usable() -> None:
    with anyio.fail_after(TIMEOUT):
        async with raw_pair() as (client, peer):
            await peer.send(BytesMessage(data=b"\x00\x01"), TextMessage(data="after"))
            with pytest.raises(ProtocolViolationError, match="binary message of 2 bytes"):
                await client.receive_text()
            assert await client.receive_text() == "after"
            await client.send_text("still here")
            event = await peer.next_event()
            assert isinstance(event, TextMessage)
            assert event.data == "still here"


async def test_receive_texts_batches_stop_at_a_binary_message() -> None:
    with anyio.fail_after(TIMEOUT):
        stream = FakeStream()
        ws, peer = fake_pair(stream)
        stream.feed(
            encode(
                peer,
                TextMessage(data="t1"),
                TextMessage(data="t2"),
                BytesMessage(data=b"bin", message_finished=False),
                BytesMessage(data=b"ary", message_finished=True),
                TextMessage(data="t3"),
            )
        )
        assert await ws.receive_texts() == ["t1", "t2"]
        with pytest.raises(ProtocolViolationError, match="6 bytes"):
            await ws.receive_texts()
        assert await ws.receive_texts() == ["t3"]
        assert stream.receive_calls == 1


async def test_message_at_the_size_limit_is_accepted() -> None:
    with anyio.fail_after(TIMEOUT):
        stream = FakeStream()
        ws, peer = fake_pair(stream, max_message_size=1000)
        stream.feed(encode(peer, TextMessage(data="x" * 1000), TextMessage(data="é" * 500)))
        assert await ws.receive_texts() == ["x" * 1000, "é" * 500]


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([TextMessage(data="x" * 1001)], id="ascii"),
        pytest.param([TextMessage(data="é" * 501)], id="utf8-bytes-counted"),
        pytest.param(
            [TextMessage(data="y" * 100, message_finished=False) for _ in range(10)]
            + [TextMessage(data="y")],
            id="fragments",
        ),
        pytest.param([BytesMessage(data=b"z" * 1001)], id="binary"),
    ],
)
async def test_oversize_message_closes_with_1009(events: list[Event]) -> None:
    with anyio.fail_after(TIMEOUT):
        stream = FakeStream()
        ws, peer = fake_pair(stream, max_message_size=1000)
        stream.feed(encode(peer, TextMessage(data="before"), *events))
        assert await ws.receive_text() == "before"
        with pytest.raises(ConnectionLostError, match="max_message_size") as info:
            await ws.receive_text()
        assert info.value.code == 1009
        assert ws.closed
        assert stream.closed
        close = decode(peer, b"".join(stream.sent))
        assert close == [CloseConnection(code=1009, reason="message too big")]


async def test_oversize_message_over_tcp_closes_both_ends() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair(max_message_size=1000) as (client, server):
            await server.send_texts(["x" * 1000, "x" * 1001])
            assert await client.receive_text() == "x" * 1000
            with pytest.raises(ConnectionLostError) as info:
                await client.receive_text()
            assert info.value.code == 1009
            with pytest.raises(ConnectionLostError) as info:
                await server.receive_text()
            assert info.value.code == 1009


async def test_invalid_utf8_fails_the_connection_with_1007() -> None:
    with anyio.fail_after(TIMEOUT):
        async with raw_pair() as (client, peer):
            await peer.stream.send(b"\x81\x02\xff\xfe")  # unmasked text frame, invalid UTF-8
            with pytest.raises(ConnectionLostError) as info:
                await client.receive_text()
            assert info.value.code == 1007
            assert isinstance(info.value.__cause__, ProtocolViolationError)
            event = await peer.next_event()
            assert isinstance(event, CloseConnection)
            assert event.code == 1007


async def test_masked_frame_from_the_server_fails_the_connection_with_1002() -> None:
    with anyio.fail_after(TIMEOUT):
        async with raw_pair() as (client, peer):
            await peer.stream.send(b"\x81\x81abcd" + bytes([ord("x") ^ ord("a")]))
            with pytest.raises(ConnectionLostError) as info:
                await client.receive_text()
            assert info.value.code == 1002
            assert isinstance(info.value.__cause__, ProtocolViolationError)


# ------------------------------------------------------------------------------- closing


async def test_client_initiated_close_handshake() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (client, server):
            errors: list[ConnectionLostError] = []

            async def server_reads() -> None:
                with pytest.raises(ConnectionLostError) as info:
                    await server.receive_text()
                errors.append(info.value)

            async with anyio.create_task_group() as tg:
                tg.start_soon(server_reads)
                await client.aclose(1000, "bye")
            assert errors[0].code == 1000
            assert "bye" in str(errors[0])
            assert client.closed
            assert server.closed
            with pytest.raises(ConnectionLostError):
                await client.send_text("too late")
            with pytest.raises(ConnectionLostError):
                await client.receive_text()
            await client.aclose()  # idempotent


async def test_close_frames_seen_by_an_independent_peer() -> None:
    with anyio.fail_after(TIMEOUT):
        async with raw_pair() as (client, peer):
            seen: list[Event] = []

            async def peer_answers() -> None:
                event = await peer.next_event()
                seen.append(event)
                assert isinstance(event, CloseConnection)
                await peer.send(event.response())

            async with anyio.create_task_group() as tg:
                tg.start_soon(peer_answers)
                await client.aclose(4000, "done")
            assert seen == [CloseConnection(code=4000, reason="done")]
            assert client.closed


async def test_server_initiated_close_is_answered() -> None:
    with anyio.fail_after(TIMEOUT):
        async with raw_pair() as (client, peer):
            await peer.send(
                TextMessage(data="a"),
                Ping(payload=b"too late for a pong"),
                TextMessage(data="b"),
                CloseConnection(code=1001, reason="going away"),
            )
            assert await client.receive_texts() == ["a", "b"]  # buffered ones come first
            with pytest.raises(ConnectionLostError, match="going away") as info:
                await client.receive_text()
            assert info.value.code == 1001
            # the close frame's answer is the first thing back: no pong once the peer closed
            assert await peer.next_event() == CloseConnection(code=1001, reason="going away")
            with pytest.raises(ConnectionLostError, match="going away"):
                await client.send_text("after close")


async def test_close_without_a_status_code_is_answered_likewise() -> None:
    with anyio.fail_after(TIMEOUT):
        async with raw_pair() as (client, peer):
            await peer.stream.send(b"\x88\x00")  # a close frame with no payload
            with pytest.raises(ConnectionLostError) as info:
                await client.receive_text()
            assert info.value.code == 1005
            assert await peer.next_event() == CloseConnection(code=1005, reason="")


async def test_server_close_reaches_the_client() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (client, server):

            async def client_reads() -> None:
                with pytest.raises(ConnectionLostError) as info:
                    await client.receive_text()
                assert info.value.code == 1001

            async with anyio.create_task_group() as tg:
                tg.start_soon(client_reads)
                await server.aclose(1001, "restart")


async def test_aclose_wakes_a_blocked_reader() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (client, server):
            reader_done = anyio.Event()

            async def client_reads() -> None:
                with pytest.raises(ConnectionLostError):
                    await client.receive_text()
                reader_done.set()

            async def server_reads() -> None:
                with pytest.raises(ConnectionLostError):
                    await server.receive_text()

            async with anyio.create_task_group() as tg:
                tg.start_soon(client_reads)
                tg.start_soon(server_reads)
                await client.aclose()
                await reader_done.wait()


async def test_aclose_is_bounded_when_the_peer_never_answers() -> None:
    with anyio.fail_after(TIMEOUT):
        async with raw_pair() as (client, _peer):  # the peer never reads
            with anyio.CancelScope() as scope:
                scope.cancel()  # aclose is shielded: a cancelled caller still closes
                await client.aclose(timeout=0.1)
            assert client.closed


async def test_peer_closing_tcp_without_a_close_frame() -> None:
    with anyio.fail_after(TIMEOUT):
        async with raw_pair() as (client, peer):
            await peer.send(TextMessage(data="last words"))
            await peer.stream.aclose()
            assert await client.receive_text() == "last words"
            with pytest.raises(ConnectionLostError, match="without a close frame") as info:
                await client.receive_text()
            assert info.value.code == 1006


async def test_peer_reset_is_connection_lost() -> None:
    with anyio.fail_after(TIMEOUT):
        async with raw_pair() as (client, peer):
            raw = peer.stream.extra(anyio.abc.SocketAttribute.raw_socket)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await peer.stream.aclose()  # linger 0: the kernel sends RST
            with pytest.raises(ConnectionLostError) as info:
                await client.receive_text()
            assert info.value.code == 1006
            with pytest.raises(ConnectionLostError):
                await client.send_text("into the void")


async def test_abort_drops_the_connection_without_a_handshake() -> None:
    with anyio.fail_after(TIMEOUT):
        async with ws_pair() as (client, server):
            await client.abort()
            await client.abort()
            with pytest.raises(ConnectionLostError) as info:
                await server.receive_text()
            assert info.value.code == 1006
            with pytest.raises(ConnectionLostError, match="aborted"):
                await client.send_text("x")


# ---------------------------------------------------------------------------- handshakes


async def test_connect_refused() -> None:
    with anyio.fail_after(TIMEOUT):
        async with listening() as (url, _):
            pass  # the port is free again: nothing listens there now
        with pytest.raises(ConnectionLostError, match=r"(?i)refused"):
            await connect_websocket(url)


async def test_connect_timeout_is_bounded() -> None:
    with anyio.fail_after(TIMEOUT):
        async with listening() as (url, _):  # accepts TCP (backlog) but never answers
            with pytest.raises(ConnectionLostError, match="timed out"):
                await connect_websocket(url, connect_timeout=0.1)


async def test_handshake_refused_with_an_http_status() -> None:
    with anyio.fail_after(TIMEOUT):
        async with listening() as (url, tcp):

            async def refuse() -> None:
                async with await tcp.accept() as stream:
                    await stream.receive()
                    await stream.send(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")

            async with anyio.create_task_group() as tg:
                tg.start_soon(refuse)
                with pytest.raises(ConnectionLostError, match="HTTP 404"):
                    await connect_websocket(url)


async def test_handshake_with_a_bad_accept_token() -> None:
    with anyio.fail_after(TIMEOUT):
        async with listening() as (url, tcp):

            async def bad_accept() -> None:
                async with await tcp.accept() as stream:
                    await stream.receive()
                    await stream.send(
                        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Accept: bogus\r\n\r\n"
                    )

            async with anyio.create_task_group() as tg:
                tg.start_soon(bad_accept)
                with pytest.raises(ConnectionLostError, match="accept token") as info:
                    await connect_websocket(url)
            assert isinstance(info.value.__cause__, ProtocolViolationError)


async def test_accept_rejects_a_plain_http_request_with_400() -> None:
    with anyio.fail_after(TIMEOUT):
        async with listening() as (url, tcp), await anyio.connect_tcp(url.host, url.port) as client:
            await client.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            with pytest.raises(ConnectionLostError, match="Upgrade") as info:
                await accept_websocket(await tcp.accept())
            assert isinstance(info.value.__cause__, ProtocolViolationError)
            response = await client.receive()
            assert response.startswith(b"HTTP/1.1 400")


async def test_accept_handshake_timeout() -> None:
    with anyio.fail_after(TIMEOUT):
        async with listening() as (url, tcp), await anyio.connect_tcp(url.host, url.port):
            with pytest.raises(ConnectionLostError, match="timed out"):
                await accept_websocket(await tcp.accept(), handshake_timeout=0.1)


async def test_bad_options_are_configuration_errors() -> None:
    url = build_url(url="ws://127.0.0.1:9")
    with pytest.raises(ConfigurationError, match="ssl_context"):
        await connect_websocket(url, ssl_context=ssl.create_default_context())
    with pytest.raises(ConfigurationError, match="max_message_size"):
        await connect_websocket(url, max_message_size=0)
    with pytest.raises(ConfigurationError, match="max_message_size"):
        await accept_websocket(FakeStream(), max_message_size=-1)


def _client_and_response(*frames: Event) -> tuple[WSConnection, bytes]:
    """A client that sent its request, and the server's 101 followed by ``frames``."""
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="test", target="/")))
    assert isinstance(next(server.events()), Request)
    return client, server.send(AcceptConnection()) + encode(server, *frames)


def test_feed_head_splits_at_every_point() -> None:
    """Whatever the read boundaries, wsproto gets exactly the HTTP head and the frames after
    it are handed back whole (a blank line split across reads included)."""
    frames = (TextMessage(data="early"), Ping(payload=b"p"))
    _, wire = _client_and_response(*frames)
    head_size = wire.index(b"\r\n\r\n") + 4
    for first in range(1, len(wire)):
        for second in {first + 1, first + 3, len(wire)}:
            client, wire = _client_and_response(*frames)
            chunks = [wire[:first], wire[first:second], wire[second:]]
            tail, leftover, accepted = b"", b"", False
            for chunk in chunks:
                if accepted:
                    leftover += chunk
                elif chunk:
                    tail, rest = feed_head(client, tail, chunk)
                    if rest is not None:
                        assert [type(e) for e in client.events()] == [AcceptConnection]
                        accepted = True
                        leftover += rest
            assert accepted
            assert leftover == wire[head_size:]


def test_feed_head_accepts_bare_newlines_like_h11() -> None:
    client, wire = _client_and_response(TextMessage(data="x"))
    head_size = wire.index(b"\r\n\r\n") + 4
    bare = wire[:head_size].replace(b"\r\n", b"\n")
    tail, rest = feed_head(client, b"", bare + wire[head_size:])
    assert [type(e) for e in client.events()] == [AcceptConnection]
    assert rest == wire[head_size:]
    assert tail == b""


@pytest.mark.parametrize("split", [1, 30, -3, -1])
async def test_accept_hands_frames_after_the_request_to_the_framer(split: int) -> None:
    """A client may not send frames before the 101, but one that does is still served (and
    the frames never reach wsproto's HTTP parser), whatever the read boundaries."""
    with anyio.fail_after(TIMEOUT):
        client = WSConnection(ConnectionType.CLIENT)
        request = client.send(Request(host="test", target="/ws"))
        helper = WSConnection(ConnectionType.SERVER)  # opens ``client`` to get its frames
        helper.receive_data(request)
        assert isinstance(next(helper.events()), Request)
        client.receive_data(helper.send(AcceptConnection()))
        assert isinstance(next(client.events()), AcceptConnection)
        wire = request + encode(client, TextMessage(data="eager"), TextMessage(data="é" * 70))
        cut = len(request) + split
        stream = FakeStream([wire[:cut], wire[cut:]])
        ws = await accept_websocket(stream)
        assert [await ws.receive_text() for _ in range(2)] == ["eager", "é" * 70]
        assert stream.sent[0].startswith(b"HTTP/1.1 101 ")


# ------------------------------------------------------------------------------------ TLS


@pytest.fixture(scope="session")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made once per test session."""
    return make_certificate(tmp_path_factory.mktemp("tls"))


@asynccontextmanager
async def tls_server(certificate: tuple[Path, Path]) -> AsyncIterator[tuple[ParsedURL, list[Any]]]:
    """Serve one TLS WebSocket; the list gets the accepted WebSocket or the server's error."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(*certificate)
    outcome: list[Any] = []
    async with listening("wss") as (url, tcp):

        async def serve() -> None:
            stream = await tcp.accept()
            try:
                tls = await TLSStream.wrap(
                    stream, server_side=True, ssl_context=server_context, standard_compatible=False
                )
                ws = await accept_websocket(tls)
                outcome.append(ws)
                assert await ws.receive_text() == "over tls"
                await ws.send_text("secure reply")
                with pytest.raises(ConnectionLostError):
                    await ws.receive_text()
            except Exception as exc:
                outcome.append(exc)
                await stream.aclose()

        async with anyio.create_task_group() as tg:
            tg.start_soon(serve)
            yield url, outcome


async def test_wss_round_trip_with_a_custom_ca(certificate: tuple[Path, Path]) -> None:
    with anyio.fail_after(TIMEOUT):
        async with tls_server(certificate) as (url, _):
            context = ssl.create_default_context(cafile=str(certificate[0]))
            client = await connect_websocket(url, ssl_context=context)
            await client.send_text("over tls")
            assert await client.receive_text() == "secure reply"
            await client.aclose()


async def test_wss_verifies_certificates_by_default(certificate: tuple[Path, Path]) -> None:
    with anyio.fail_after(TIMEOUT):
        async with tls_server(certificate) as (url, outcome):
            with pytest.raises(ConnectionLostError, match=r"(?i)certificate"):
                await connect_websocket(url)
        assert outcome
        assert not isinstance(outcome[0], WebSocket)  # the server saw the handshake fail


async def test_wss_to_a_plain_tcp_server_is_connection_lost() -> None:
    with anyio.fail_after(TIMEOUT):
        async with listening("wss") as (url, tcp):

            async def not_tls() -> None:
                async with await tcp.accept() as stream:
                    await stream.send(b"HTTP/1.1 400 Bad Request\r\n\r\n")

            async with anyio.create_task_group() as tg:
                tg.start_soon(not_tls)
                with pytest.raises(ConnectionLostError):
                    await connect_websocket(url)


# ------------------------------------------------------------------------------- logging


async def test_debug_logging_redacts_secrets(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="relay_anyio.transport")
    with anyio.fail_after(TIMEOUT):
        stream = FakeStream()
        ws, peer = fake_pair(stream)
        await ws.send_text('{"authentication":{"project":"P","token":"PT-SECRET"}}')
        stream.feed(encode(peer, TextMessage(data='{"result":{"jwt_token": "J-SECRET"}}')))
        await ws.receive_text()
    assert "SECRET" not in caplog.text
    assert '"token":"***"' in caplog.text
    assert '"jwt_token": "***"' in caplog.text


def test_redact_cuts_long_frames() -> None:
    text = Redactor().frame('{"signature":"s\\"x","n":"' + "a" * 10000 + '"}')
    assert text.startswith('{"signature":"***","n":')
    assert text.endswith("chars)")
    assert len(text) < 4100


# ------------------------------------------------------------------------------ URLs


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, "wss://relay.signalwire.com/"),
        ({"host": "example.signalwire.com"}, "wss://example.signalwire.com/"),
        ({"host": "Example.SignalWire.com:8443"}, "wss://example.signalwire.com:8443/"),
        ({"host": "example.signalwire.com", "path": "/api/relay/ws"},
         "wss://example.signalwire.com/api/relay/ws"),
        ({"host": "::1"}, "wss://[::1]/"),
        ({"url": "wss://example.signalwire.com/api/relay/ws"},
         "wss://example.signalwire.com/api/relay/ws"),
        ({"url": "WSS://EXAMPLE.com:443/"}, "wss://example.com/"),
        ({"url": "ws://127.0.0.1:8080"}, "ws://127.0.0.1:8080/"),
        ({"url": "ws://127.5.6.7"}, "ws://127.5.6.7/"),
        ({"url": "ws://localhost:8080", "path": "/x"}, "ws://localhost:8080/x"),
        ({"url": "ws://[::1]:9000"}, "ws://[::1]:9000/"),
        ({"url": "ws://[::ffff:127.0.0.1]:9000"}, "ws://[::ffff:127.0.0.1]:9000/"),
        ({"url": "ws://example.com:80", "allow_insecure": True}, "ws://example.com/"),
    ],
)  # fmt: skip
def test_build_url_accepts(options: dict[str, Any], expected: str) -> None:
    assert str(build_url(**options)) == expected


def test_parsed_url_fields() -> None:
    url = build_url(url="ws://[::1]:9000/ws")
    assert (url.secure, url.scheme, url.host, url.port, url.path) == (
        False,
        "ws",
        "::1",
        9000,
        "/ws",
    )
    assert url.host_header == "[::1]:9000"
    assert build_url().port == 443
    assert build_url().host_header == "relay.signalwire.com"


@pytest.mark.parametrize(
    "options",
    [
        {"host": "user:pw@example.com"},
        {"host": "example.com/path"},
        {"host": "example.com?x=1"},
        {"host": "example.com#frag"},
        {"host": "example.com\r\nX-Evil: 1"},
        {"host": "example.com\n"},
        {"host": "exa mple.com"},
        {"host": "exa\tmple.com"},
        {"host": "ex\\ample.com"},
        {"host": ""},
        {"host": "wss://example.com"},
        {"host": "exämple.com"},
        {"host": "example.com:0"},
        {"host": "example.com:99999"},
        {"host": "example.com:abc"},
        {"host": "a..b"},
        {"host": "[zz]"},
        {"url": "ws://example.com"},
        {"url": "ws://10.0.0.1:80"},
        {"url": "ws://localhost.example.com"},
        {"url": "ws://[::2]:80"},
        {"url": "http://example.com"},
        {"url": "example.com"},
        {"url": "wss://"},
        {"url": "wss://user:pw@example.com"},
        {"url": "wss://example.com/?token=x"},
        {"url": "wss://example.com?token=x"},
        {"url": "wss://example.com/#f"},
        {"url": "wss://example.com/a b"},
        {"url": "wss://example.com/é"},
        {"host": "a.com", "url": "wss://b.com"},
        {"url": "wss://example.com/x", "path": "/y"},
        {"host": "example.com", "path": "nope"},
    ],
)
def test_build_url_rejects(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as info:
        build_url(**options)
    assert isinstance(info.value, ValueError)
    assert "pw" not in str(info.value)
    assert "token=x" not in str(info.value)


# --------------------------------------------------------------------- error translation


def test_translate_error_table() -> None:
    reset = anyio.BrokenResourceError()
    reset.__cause__ = ConnectionResetError(104, "Connection reset by peer")
    cases: list[tuple[BaseException, str, int | None]] = [
        (anyio.EndOfStream(), "the peer closed the connection", 1006),
        (anyio.ClosedResourceError(), "closed locally", None),
        (reset, "Connection reset by peer", 1006),
        (ConnectionRefusedError(111, "Connection refused"), "Connection refused", 1006),
        (OSError("All connection attempts failed"), "All connection attempts failed", 1006),
        (ssl.SSLError(1, "[SSL] wrong version number"), "TLS error", 1006),
        (wsproto.utilities.RemoteProtocolError("bad", event_hint=None), "invalid WebSocket", None),
        (wsproto.utilities.LocalProtocolError("state"), "closed", None),
    ]
    for exc, text, code in cases:
        err = translate_error(exc, "ctx")
        assert isinstance(err, ConnectionLostError), exc
        assert str(err).startswith("ctx: ")
        assert text in str(err)
        assert err.code == code
    mine = ProtocolViolationError("mine")
    assert translate_error(mine, "ctx") is mine
    assert translate_error(ValueError("a bug"), "ctx") is None


# ------------------------------------------------------------------------------- errors


def test_error_hierarchy_and_messages() -> None:
    assert str(RelayError("plain")) == "plain"
    assert str(AuthenticationError("bad token", code=-32002)) == "bad token (code -32002)"
    assert issubclass(ConfigurationError, ValueError)
    assert issubclass(DialTimeoutError, TimeoutError)
    assert issubclass(CallGoneError, RequestError)
    for cls in (AuthenticationError, ConnectionLostError, RequestError, DialFailedError,
                DialTimeoutError, ProtocolViolationError, ConfigurationError):  # fmt: skip
        assert issubclass(cls, RelayError)
    refused = request_error("nope", code=500, data={"token": "SECRET"}, method="calling.end")
    assert type(refused) is RequestError
    assert str(refused) == "calling.end failed: nope (code 500)"
    assert "SECRET" not in repr(refused)
    assert refused.data == {"token": "SECRET"}
    assert isinstance(request_error("gone", code=404), CallGoneError)
    assert isinstance(request_error("gone", code=410), CallGoneError)


def test_dial_errors_list_each_leg() -> None:
    legs = (
        Leg(call_id="c1", node_id="n", state=CallState.ENDED, end_reason="busy",
            device={"type": "phone", "params": {"to_number": "+15550001", "from_number": "+1"}}),
        Leg(call_id="c2", node_id="n", state=CallState.ENDED, end_reason="noAnswer",
            device={"type": "sip", "params": {"to": "sip:a@b", "headers": [{"name": "X-Token",
                                                                             "value": "SECRET"}]}}),
        Leg(call_id="c3", node_id="n", state=CallState.RINGING, device={"type": "webrtc"}),
        Leg(call_id="c4", node_id="n", state=CallState.CREATED, device={"params": "junk"}),
    )  # fmt: skip
    failed = DialFailedError("dial failed", legs=legs, reason="busy", source="device", tag="t")
    text = str(failed)
    assert text == (
        "dial failed (reason=busy, source=device); legs: +15550001: busy, sip:a@b: noAnswer, "
        "webrtc: ringing, ?: created"
    )
    assert "SECRET" not in text
    assert (failed.legs, failed.reason, failed.source, failed.tag) == (legs, "busy", "device", "t")
    timeout = DialTimeoutError("no answer within 30 s", legs=legs[:1])
    assert str(timeout) == "no answer within 30 s; legs: +15550001: busy"
    assert isinstance(timeout, TimeoutError)
    assert str(DialFailedError()) == "dial failed"


@pytest.mark.parametrize("host", ["example.com:PT-secret", "[PT-secret::1]", "PT-secret..x"])
def test_invalid_host_errors_never_quote_the_input(host: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        build_url(host=host)
    assert "PT-secret" not in str(info.value)


ECHOED = "PT-echoed-secret"


def test_redactor_masks_secret_values_wherever_they_occur() -> None:
    held = [ECHOED]
    redactor = Redactor(lambda: held)
    assert redactor.text(f"bad token {ECHOED}, again:{ECHOED}") == "bad token ***, again:***"
    held.append("blob-from-the-server")  # read at each use: a later authorization_state
    assert redactor.text("x blob-from-the-server") == "x ***"
    frame = redactor.frame(f'{{"error":{{"message":"no {ECHOED}"}}}}')
    assert ECHOED not in frame
    assert "***" in frame


def test_redactor_masks_data_to_any_depth_and_keeps_its_shape() -> None:
    redactor = Redactor(lambda: [ECHOED])
    data = {"a": [1, None, f"t={ECHOED}", {ECHOED: True}], "b": 2.5}
    assert redactor.value(data) == {"a": [1, None, "t=***", {"***": True}], "b": 2.5}
    assert list(redactor.value({"z": 1, "y": 2, "x": 3})) == ["z", "y", "x"]
    deep: list[object] = [ECHOED]
    for _ in range(100_000):
        deep = [deep]
    masked = redactor.value(deep)
    for _ in range(100_000):
        masked = masked[0]
    assert masked == ["***"]
    assert Redactor().value(data) is data  # no secrets: nothing to copy


def test_redactor_leaves_values_too_short_to_be_credentials() -> None:
    assert Redactor(lambda: ["t", "abc"]).text("the abc test") == "the abc test"


async def test_an_echoed_secret_is_masked_in_frame_logs_and_close_reasons(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="relay_anyio.transport")
    with anyio.fail_after(TIMEOUT):
        stream = FakeStream()
        ws, peer = fake_pair(stream, redactor=Redactor(lambda: [ECHOED]))
        stream.feed(encode(peer, TextMessage(data=f'{{"error":{{"message":"{ECHOED}"}}}}')))
        await ws.receive_text()
        stream.feed(encode(peer, CloseConnection(code=4000, reason=f"bye {ECHOED}")))
        with pytest.raises(ConnectionLostError) as caught:
            await ws.receive_text()
    assert ECHOED not in str(caught.value)
    assert "bye ***" in str(caught.value)
    assert ECHOED not in caplog.text

"""wsproto's framing behind the interface of ``relay_anyio._websocket.Framer``: the test
oracle for the project's frame codec and close-state table (``tests/test_framing.py``).

The client frames with ``Framer`` only; this one exists so that the same close-handshake
table and the same bytes can be checked against an independent implementation.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    Request,
    TextMessage,
)
from wsproto.frame_protocol import CloseReason

from relay_anyio._frames import MESSAGE_TOO_BIG, BinaryMessage, Close, FrameEvent, FramingError
from relay_anyio._frames import Ping as FramePing
from relay_anyio._frames import Pong as FramePong
from relay_anyio._websocket import CloseState


def open_pair() -> tuple[WSConnection, WSConnection]:
    """A wsproto client and server that completed the handshake with each other."""
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="test", target="/")))
    assert isinstance(next(server.events()), Request)
    client.receive_data(server.send(AcceptConnection()))
    assert isinstance(next(client.events()), AcceptConnection)
    return client, server


_WSPROTO_STATES = {
    ConnectionState.OPEN: CloseState.OPEN,
    ConnectionState.LOCAL_CLOSING: CloseState.LOCAL_CLOSING,
    ConnectionState.REMOTE_CLOSING: CloseState.REMOTE_CLOSING,
    ConnectionState.CLOSED: CloseState.CLOSED,
}


def _utf8_len(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class WsprotoFramer:
    """wsproto's framing behind the same interface: it reassembles wsproto's partial
    messages, enforces ``max_message_size`` (1009) and turns a wsproto parse failure (a
    ``CloseConnection`` that leaves the state OPEN or LOCAL_CLOSING) into a ``FramingError``."""

    __slots__ = ("_binary", "_done", "_fast_limit", "_max_size", "_part_bytes", "_parts", "_ws")

    def __init__(self, connection: WSConnection, *, max_message_size: int) -> None:
        self._ws = connection
        self._max_size = max_message_size
        self._fast_limit = max_message_size // 4  # a str this short fits whatever its UTF-8
        self._parts: list[str] = []
        self._binary: list[bytes] = []
        self._part_bytes = 0
        self._done = False

    @property
    def state(self) -> CloseState:
        return _WSPROTO_STATES.get(self._ws.state, CloseState.CLOSED)

    def receive(self, data: bytes) -> list[FrameEvent]:
        out: list[FrameEvent] = []
        if self._done:
            return out
        self._ws.receive_data(data)
        for event in self._ws.events():
            if isinstance(event, TextMessage):
                text = event.data
                if event.message_finished and not self._parts:
                    if len(text) > self._fast_limit and _utf8_len(text) > self._max_size:
                        return self._stop(out, _too_big())
                    out.append(text)
                    continue
                self._part_bytes += _utf8_len(text)
                if self._part_bytes > self._max_size:
                    return self._stop(out, _too_big())
                self._parts.append(text)
                if event.message_finished:
                    out.append("".join(self._parts))
                    self._parts = []
                    self._part_bytes = 0
            elif isinstance(event, BytesMessage):
                self._part_bytes += len(event.data)
                if self._part_bytes > self._max_size:
                    return self._stop(out, _too_big())
                self._binary.append(bytes(event.data))
                if event.message_finished:
                    out.append(BinaryMessage(data=b"".join(self._binary)))
                    self._binary = []
                    self._part_bytes = 0
            elif isinstance(event, Ping):
                out.append(FramePing(payload=bytes(event.payload)))
            elif isinstance(event, Pong):
                out.append(FramePong(payload=bytes(event.payload)))
            elif isinstance(event, CloseConnection):
                if self.state in (CloseState.REMOTE_CLOSING, CloseState.CLOSED):
                    item: FrameEvent = Close(code=int(event.code), reason=event.reason or "")
                else:  # still OPEN / LOCAL_CLOSING: wsproto could not parse the peer's frames
                    item = FramingError(code=int(event.code), reason=event.reason or "")
                return self._stop(out, item)
        return out

    def _stop(self, out: list[FrameEvent], last: FrameEvent) -> list[FrameEvent]:
        self._done = True
        self._parts = []
        self._binary = []
        out.append(last)
        return out

    def encode_texts(self, texts: Iterable[str]) -> bytes:
        if self.state is not CloseState.OPEN:
            raise RuntimeError(f"cannot send text in state {self.state.name}")
        send = self._ws.send
        return b"".join([send(TextMessage(data=text)) for text in texts])

    def encode_pongs(self, payloads: Sequence[bytes]) -> bytes:
        if self.state is not CloseState.OPEN:
            return b""
        return b"".join([self._ws.send(Pong(payload=payload)) for payload in payloads])

    def encode_close(self, code: int, reason: str) -> bytes:
        if self.state is not CloseState.OPEN:
            return b""
        return self._ws.send(CloseConnection(code=code, reason=reason or None))

    def encode_close_reply(self, close: Close) -> bytes:
        if self.state is not CloseState.REMOTE_CLOSING:
            return b""
        code: int = close.code
        if code == CloseReason.NO_STATUS_RCVD:
            code = CloseReason.NO_STATUS_RCVD  # wsproto sends no code only for the enum member
        return self._ws.send(CloseConnection(code=code, reason=close.reason))


def _too_big() -> FramingError:
    return FramingError(code=MESSAGE_TOO_BIG, reason="message too big")


def wsproto_framer(*, client: bool, max_message_size: int) -> WsprotoFramer:
    """A ``WsprotoFramer`` on one side of a freshly opened wsproto pair."""
    ws_client, ws_server = open_pair()
    return WsprotoFramer(ws_client if client else ws_server, max_message_size=max_message_size)

"""The framing of an open WebSocket: the close handshake's state plus a frame codec (Sans-IO).

``WebSocket`` drives one ``Framer``, of two interchangeable kinds:

* ``FastFramer`` (``framing="fast"``, the default): ``FrameCodec``, built for the data path.
* ``WsprotoFramer`` (``framing="wsproto"``): wsproto's own framing, kept as the reference
  implementation, so the two can be compared and cross-checked end to end.

Invariants (the reasons behind the code below):

* Both speak the same vocabulary: ``receive(data)`` returns ``_framing.FrameEvent`` items in
  wire order, a ``str`` per complete text message, with the state already updated; the
  ``encode_*`` methods return wire bytes (``b""`` when the state no longer allows the frame).
* The close handshake is one table: a close received moves OPEN to REMOTE_CLOSING (we owe a
  reply) and LOCAL_CLOSING to CLOSED (it was the reply); our close moves OPEN to
  LOCAL_CLOSING; our reply moves REMOTE_CLOSING to CLOSED. Anything else sends nothing.
  Text may be encoded only while OPEN.
* A ``Close`` or ``FramingError`` is the last item a framer ever returns: the transport
  answers it and gives up the socket.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from typing import Literal, Protocol

from wsproto import WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.frame_protocol import CloseReason

from . import _framing
from ._framing import BinaryMessage, Close, FrameCodec, FrameEvent, FramingError

__all__ = [
    "CloseState",
    "FastFramer",
    "Framer",
    "Framing",
    "WsprotoFramer",
    "make_framer",
]

#: Which implementation frames an open WebSocket.
Framing = Literal["fast", "wsproto"]

_MESSAGE_TOO_BIG = 1009


class CloseState(enum.Enum):
    OPEN = "open"
    LOCAL_CLOSING = "local_closing"  # our close frame is out; waiting for the peer's reply
    REMOTE_CLOSING = "remote_closing"  # the peer's close frame is in; our reply is owed
    CLOSED = "closed"


_CLOSE_RECEIVED = {
    CloseState.OPEN: CloseState.REMOTE_CLOSING,
    CloseState.LOCAL_CLOSING: CloseState.CLOSED,
}
_CLOSE_SENT = {CloseState.OPEN: CloseState.LOCAL_CLOSING}
_REPLY_SENT = {CloseState.REMOTE_CLOSING: CloseState.CLOSED}


class Framer(Protocol):
    @property
    def state(self) -> CloseState: ...

    def receive(self, data: bytes) -> list[FrameEvent]:
        """Decode ``data`` (bytes read from the peer) into complete items."""
        ...

    def encode_texts(self, texts: Iterable[str]) -> bytes:
        """Frames for text messages; only while OPEN (``RuntimeError`` otherwise)."""
        ...

    def encode_pongs(self, payloads: Sequence[bytes]) -> bytes:
        """Pongs answering pings, or b"" once the close handshake has started."""
        ...

    def encode_close(self, code: int, reason: str) -> bytes:
        """Our close frame, starting the close handshake; b"" unless OPEN."""
        ...

    def encode_close_reply(self, close: Close) -> bytes:
        """The reply to the peer's close frame (its code echoed); b"" unless REMOTE_CLOSING."""
        ...


class FastFramer:
    """``FrameCodec`` plus the close-handshake state."""

    __slots__ = ("_codec", "_state")

    def __init__(self, *, client: bool, max_message_size: int) -> None:
        self._codec = FrameCodec(client=client, max_message_size=max_message_size)
        self._state = CloseState.OPEN

    @property
    def state(self) -> CloseState:
        return self._state

    def receive(self, data: bytes) -> list[FrameEvent]:
        codec = self._codec
        codec.feed(data)
        events = codec.events()
        if events and isinstance(events[-1], Close):
            self._state = _CLOSE_RECEIVED.get(self._state, self._state)
        return events

    def encode_texts(self, texts: Iterable[str]) -> bytes:
        if self._state is not CloseState.OPEN:
            raise RuntimeError(f"cannot send text in state {self._state.name}")
        return self._codec.encode_texts(texts)

    def encode_pongs(self, payloads: Sequence[bytes]) -> bytes:
        if self._state is not CloseState.OPEN:
            return b""
        return b"".join([self._codec.encode_pong(payload) for payload in payloads])

    def encode_close(self, code: int, reason: str) -> bytes:
        if self._state not in _CLOSE_SENT:
            return b""
        self._state = _CLOSE_SENT[self._state]
        return self._codec.encode_close(code, reason)

    def encode_close_reply(self, close: Close) -> bytes:
        if self._state not in _REPLY_SENT:
            return b""
        self._state = _REPLY_SENT[self._state]
        return self._codec.encode_close(close.code, close.reason)


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
                out.append(_framing.Ping(payload=bytes(event.payload)))
            elif isinstance(event, Pong):
                out.append(_framing.Pong(payload=bytes(event.payload)))
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
    return FramingError(code=_MESSAGE_TOO_BIG, reason="message too big")


def make_framer(
    framing: Framing, *, client: bool, max_message_size: int, connection: WSConnection
) -> Framer:
    """The framer for an open WebSocket whose handshake ``connection`` completed."""
    if framing == "wsproto":
        return WsprotoFramer(connection, max_message_size=max_message_size)
    return FastFramer(client=client, max_message_size=max_message_size)

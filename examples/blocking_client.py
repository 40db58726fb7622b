"""A blocking RELAY client: ``relay_proto`` over ``socket`` + ``selectors`` + wsproto.

No anyio, asyncio or threads: one synchronous loop drives two Sans-IO state machines,
wsproto (the HTTP upgrade and WebSocket framing) and ``relay_proto.ClientConnection``.

1. Open a TCP connection; send wsproto's ``Request`` and feed it bytes until it reports
   ``AcceptConnection``.
2. ``core.connect(now=time.monotonic())``, then loop (``BlockingRelay.step``):

   * drain ``core.data_to_send()``, each frame through ``ws.send(Message(data=...))``,
     and write it all (Pongs included) with one ``sendall``;
   * ``select`` on the socket for at most ``core.next_deadline() - now``;
   * readable: ``recv`` -> ``ws.receive_data`` -> wsproto events: ``TextMessage`` pieces
     are joined into whole messages for ``core.receive(text, now=...)``; a ``Ping`` gets
     its ``Pong``; a ``CloseConnection`` from the peer ends the session;
   * deadline reached: ``core.handle_timer(now=...)``.

3. ``core.connection_lost()``, then close the WebSocket (send ``CloseConnection``, read
   until the peer's) and the socket.

It dials one phone, plays a TTS greeting, hangs up and prints one line per event. One
overall deadline bounds every wait. It does not reconnect or speak TLS (for ``wss://``,
wrap the socket with ``ssl`` and mind ``SSLSocket.pending()`` before each ``select``).

    python -m relay_anyio serve --listen 127.0.0.1:0   # prints ws://127.0.0.1:PORT
    python examples/blocking_client.py ws://127.0.0.1:PORT
"""

from __future__ import annotations

import enum
import os
import selectors
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

import wsproto.events
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection, Message, Ping, RejectConnection, Request, TextMessage

from relay_proto import (
    CallState,
    CallStateChanged,
    ClientConnection,
    Connected,
    ConnectFailed,
    DialAnswered,
    DialFailed,
    DialTimedOut,
    DisconnectRequested,
    Event,
    LivenessLost,
    PlayStateChanged,
    RemoteProtocolError,
    RequestFailed,
)

MAX_MESSAGE = 16 * 1024 * 1024  # characters; wsproto itself does not bound a message
PHONE = {"type": "phone", "params": {"from_number": "+15551234567", "to_number": "+15559876543"}}
FIELDS = ("method", "call_id", "state", "end_reason", "cause", "reason")


def describe(event: Event) -> str:
    """One line: the event's class and its few telling fields."""
    values = ((name, getattr(event, name, None)) for name in FIELDS)
    shown = [f"{n}={v.value if isinstance(v, enum.Enum) else v}" for n, v in values if v]
    return " ".join([type(event).__name__, *shown])


class BlockingRelay:
    """A connected socket, its wsproto connection and a RELAY core, driven by ``step()``."""

    def __init__(
        self,
        sock: socket.socket,
        selector: selectors.BaseSelector,
        url: str,
        core: ClientConnection,
        *,
        deadline: float,
    ) -> None:
        parts = urlsplit(url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.sock, self.selector, self.core, self.deadline = sock, selector, core, deadline
        selector.register(sock, selectors.EVENT_READ)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.outgoing = bytearray(self.ws.send(Request(host=parts.netloc, target=target)))
        self.pieces: list[str] = []
        self.events: deque[Event] = deque()
        self.started = time.monotonic()

    def flush(self) -> None:
        """Drain the core's outbox through wsproto; one ``sendall`` for everything queued."""
        if self.ws.state is ConnectionState.OPEN:
            for text in self.core.data_to_send():
                self.outgoing += self.ws.send(Message(data=text))
        if self.outgoing:
            self.sock.sendall(self.outgoing)
            self.outgoing.clear()

    def read(self, until: float) -> None:
        """Wait for bytes until ``until`` (at the latest) and feed them to wsproto."""
        now = time.monotonic()
        if now >= self.deadline:
            raise TimeoutError("the overall deadline passed")
        if self.selector.select(timeout=max(0.0, min(until, self.deadline) - now)):
            data = self.sock.recv(65536)
            if not data and self.ws.state is ConnectionState.CONNECTING:
                raise ConnectionError("the server closed the socket during the handshake")
            self.ws.receive_data(data or None)  # None: the TCP connection is closed
            for ws_event in self.ws.events():
                self.on_ws_event(ws_event)

    def on_ws_event(self, ws_event: wsproto.events.Event) -> None:
        match ws_event:
            case TextMessage(data=piece, message_finished=finished):
                self.pieces.append(piece)
                if sum(map(len, self.pieces)) > MAX_MESSAGE:
                    raise ConnectionError("incoming message too large")
                if finished:
                    text = "".join(self.pieces)
                    self.pieces.clear()
                    try:
                        self.events += self.core.receive(text, now=time.monotonic())
                    except RemoteProtocolError as exc:  # the session goes on; log and ignore
                        print(f"ignored a bad message: {exc}")
            case Ping() if self.ws.state is ConnectionState.OPEN:
                self.outgoing += self.ws.send(ws_event.response())
            case CloseConnection() if self.ws.state is ConnectionState.REMOTE_CLOSING:
                self.outgoing += self.ws.send(ws_event.response())
            case RejectConnection(status_code=status):
                raise ConnectionError(f"WebSocket handshake refused (HTTP {status})")
            case _:  # AcceptConnection (the state says it), our own close's echo, binary
                pass

    def step(self) -> None:
        """One turn: write what is queued, wait for a message or the next deadline."""
        self.flush()
        if self.ws.state is ConnectionState.CLOSED:
            raise ConnectionError("the server closed the WebSocket")
        due = self.core.next_deadline()
        self.read(self.deadline if due is None else due)
        now = time.monotonic()
        if (due := self.core.next_deadline()) is not None and due <= now:
            self.events += self.core.handle_timer(now=now)

    def wait_for(self, wanted: Callable[[Event], bool]) -> Event:
        """Run the loop, printing every event, until one is ``wanted``; return it."""
        while True:
            while self.events:
                event = self.events.popleft()
                print(f"{time.monotonic() - self.started:7.3f}s  {describe(event)}")
                if isinstance(event, ConnectFailed | LivenessLost | DisconnectRequested):
                    raise ConnectionError(f"session lost ({describe(event)}); no reconnect here")
                if isinstance(event, RequestFailed):  # e.g. a refused play: its events won't come
                    raise RuntimeError(f"{event.method} failed: {event.code} {event.message}")
                if wanted(event):
                    return event
            self.step()

    def open(self) -> None:
        """Finish the WebSocket handshake, then start the RELAY session."""
        while self.ws.state is ConnectionState.CONNECTING:
            self.flush()
            self.read(self.deadline)
        self.core.connect(now=time.monotonic())

    def close(self) -> None:
        """Forget the session, send our close frame and read until the peer's arrives."""
        self.core.connection_lost(now=time.monotonic())
        self.core.data_to_send()  # discarded: the socket is going away
        if self.ws.state is ConnectionState.OPEN:
            self.outgoing += self.ws.send(CloseConnection(code=1000))
        while self.ws.state is not ConnectionState.CLOSED:
            self.flush()
            self.read(self.deadline)
        self.flush()


def main(url: str, *, timeout: float = 20.0) -> list[str]:
    """Dial, play, hang up; return the milestones reached, e.g. answered, finished, ended."""
    parts = urlsplit(url)
    if parts.scheme != "ws" or not parts.hostname:
        raise ValueError("expected a ws://host:port URL")
    core = ClientConnection(
        project=os.environ.get("SIGNALWIRE_PROJECT_ID", "demo"),
        token=os.environ.get("SIGNALWIRE_API_TOKEN", "demo"),
    )
    deadline = time.monotonic() + timeout
    milestones: list[str] = []
    with (
        socket.create_connection((parts.hostname, parts.port or 80), timeout=5.0) as sock,
        selectors.DefaultSelector() as selector,
    ):
        relay = BlockingRelay(sock, selector, url, core, deadline=deadline)
        relay.open()
        relay.wait_for(lambda e: isinstance(e, Connected))
        tag = core.dial([[PHONE]], now=time.monotonic())
        outcome = relay.wait_for(
            lambda e: isinstance(e, DialAnswered | DialFailed | DialTimedOut) and e.tag == tag
        )
        if isinstance(outcome, DialAnswered):
            call_id = outcome.call.call_id
            milestones.append("answered")
            _, control_id = core.play(call_id, [{"type": "tts", "text": "Hello, blocking!"}])
            played = relay.wait_for(
                lambda e: (
                    isinstance(e, PlayStateChanged)
                    and e.control_id == control_id
                    and e.state.terminal
                )
            )
            assert isinstance(played, PlayStateChanged)
            milestones.append(played.state.value)
            core.end(call_id)
            relay.wait_for(
                lambda e: (
                    isinstance(e, CallStateChanged)
                    and e.call_id == call_id
                    and e.state is CallState.ENDED
                )
            )
            milestones.append("ended")
        else:
            milestones.append(describe(outcome))
        relay.close()
    return milestones


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} ws://HOST:PORT")
    reached = main(sys.argv[1])
    print(" -> ".join(reached))
    sys.exit(0 if reached[-1:] == ["ended"] else 1)

"""The socket side of a session: connect, handshake, read, reconnect.

``Link.supervise`` runs for the client's whole life: it opens a socket (through the
``connect`` callable it was given: ``connect_websocket`` unless the user passed a
``transport_factory``), sends ``signalwire.connect`` through the core, reads messages into
the core (handing the events to its owner) and, when the socket dies, reconnects with
backoff and jitter so the core can resume the session. Everything else (commands, timers,
the writer, what events mean) is the owner's, reached through ``LinkOwner`` only.

Invariants: at most one socket at a time (``ws``); the core hears ``connection_lost``
exactly once per socket; credentials refused ``auth_attempts`` times in a row are final
(handed to ``LinkOwner.fail``, raised from ``async with`` if no session ever started); a
socket that opens but never completes the handshake counts as a failed connect attempt.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

import anyio
import anyio.abc

from relay_proto import (
    ClientConnection,
    Connected,
    ConnectFailed,
    Event,
    RemoteProtocolError,
    SessionState,
)

from ._errors import AuthenticationError, ConnectionLostError, ProtocolViolationError, RelayError
from ._options import Reconnect, Timeouts
from ._redact import Redactor

__all__ = ["AUTHENTICATION_FAILED", "Link", "LinkOwner", "Transport", "TransportFactory"]

logger = logging.getLogger("relay_anyio")


class Transport(Protocol):
    """What the client needs of an open socket carrying text messages. ``WebSocket`` is one;
    a ``transport_factory`` may return any object that behaves the same way."""

    async def receive_texts(self) -> list[str]:
        """The next batch of complete messages (at least one). Raises
        ``ConnectionLostError`` once the socket is gone, ``ProtocolViolationError`` for a
        message the client must skip (the socket stays usable)."""
        ...

    async def send_from(self, drain: Callable[[], Iterable[str]]) -> None:
        """Write the messages ``drain()`` returns, calling it under the write lock; raises
        a ``RelayError`` if the write failed (the socket is then gone)."""
        ...

    async def aclose(self, *, timeout: float) -> None:  # noqa: ASYNC109
        """Close handshake within ``timeout`` seconds; never raises for a dead socket."""
        ...

    async def abort(self) -> None:
        """Drop the socket at once."""
        ...


#: ``transport_factory``: opens one socket per call (raising ``ConnectionLostError`` if it
#: cannot), for each connection attempt.
TransportFactory = Callable[[], Awaitable[Transport]]


class LinkOwner(Protocol):
    """What the link needs of the session it serves."""

    @property
    def core(self) -> ClientConnection: ...

    @property
    def stopping(self) -> bool:
        """True once no more reconnecting is wanted."""
        ...

    #: ``anyio.current_time`` of the running loop (looked up once).
    clock: Callable[[], float]

    def dispatch(self, events: list[Event]) -> None:
        """Act on events the core returned."""
        ...

    def poke_timer(self) -> None:
        """The core's next deadline may have moved earlier."""
        ...

    async def flush(self) -> None:
        """Write what the core has queued."""
        ...

    def fail(self, error: RelayError) -> None:
        """The client failed for good with ``error``."""
        ...


#: The JSON-RPC error code of ``signalwire.connect`` for refused credentials.
AUTHENTICATION_FAILED = -32002


class Link:
    """One client's connection, across reconnects."""

    def __init__(
        self,
        owner: LinkOwner,
        connect: TransportFactory,
        *,
        name: str,
        timeouts: Timeouts,
        reconnect: Reconnect,
    ) -> None:
        self._owner = owner
        #: Server text that can become an error or a log line passes through this first.
        self._redactor = Redactor(lambda: owner.core.secrets)
        self._connect = connect
        self._name = name
        self._connect_timeout = timeouts.connect
        self._close_timeout = timeouts.close
        self._connect_attempts = reconnect.connect_attempts
        self._auth_attempts = reconnect.auth_attempts
        self._backoff_initial = reconnect.backoff_initial
        self._backoff_max = reconnect.backoff_max
        #: The open socket, or None between sockets.
        self.ws: Transport | None = None
        self._socket_scope: anyio.CancelScope | None = None
        self._socket_dead = False
        #: Sockets that completed the handshake so far (1 + reconnects).
        self.connections = 0
        self._started = False
        self._connect_failures = 0
        self._auth_failures = 0

    async def supervise(
        self, scope: anyio.CancelScope, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        """Connect, read, reconnect until the owner is ``stopping``. ``scope`` (the caller's,
        cancellable while the first connect runs) is shielded once the first session is up,
        so that a cancellation of the code around ``async with client`` cannot kill the
        reader before ``__aexit__`` has hung up."""
        self._started = False
        backoff = self._backoff_initial

        def ready() -> None:
            nonlocal backoff
            backoff, self._auth_failures, self._connect_failures = self._backoff_initial, 0, 0
            self.connections += 1
            if not self._started:
                self._started = True
                scope.shield = True
                task_status.started()

        owner = self._owner
        while not owner.stopping:
            await self._attempt(ready)
            if owner.stopping:
                return
            await anyio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, self._backoff_max)

    async def _attempt(self, ready: Callable[[], None]) -> None:
        """One connection attempt, read to its end; raises once the attempts before a first
        session are used up."""
        try:
            ws = await self._connect()
        except ConnectionLostError as exc:
            self._connect_failed(exc)
            logger.warning("connect to %s failed: %s", self._name, exc)
            return
        before = self.connections
        try:
            await self._run_socket(ws, ready)
        except AuthenticationError as exc:
            # PROTOCOL.md 2.1: refused credentials are final only before any session was
            # up; afterwards keep trying (the client stays supervised).
            self._auth_failures += 1
            if not self._started and self._auth_failures >= self._auth_attempts:
                self._owner.fail(exc)
                raise
            logger.warning("authentication failed: %s", exc)
        else:
            if self.connections == before and not self._owner.stopping:
                # The socket opened but the session never started (no answer to
                # signalwire.connect, or closed first): a failed connect attempt.
                self._connect_failed(
                    ConnectionLostError(
                        f"{self._name}: the server did not answer signalwire.connect"
                    )
                )

    def _connect_failed(self, error: ConnectionLostError) -> None:
        self._connect_failures += 1
        if not self._started and self._connect_failures >= self._connect_attempts:
            raise error

    def close_within(self, seconds: float) -> None:
        """The server announced it will close this socket: stop waiting after ``seconds``."""
        scope = self._socket_scope
        if scope is not None:
            scope.deadline = min(scope.deadline, anyio.current_time() + seconds)

    def abort(self, *, dead: bool = False) -> None:
        """Stop reading the current socket; ``dead``: the peer is unresponsive, so drop the
        socket without waiting for a close handshake that would only time out."""
        scope = self._socket_scope
        if scope is not None:
            self._socket_dead = self._socket_dead or dead
            scope.cancel()

    async def _run_socket(self, ws: Transport, ready: Callable[[], None]) -> None:
        """Handshake and read one socket until it dies. Raises AuthenticationError."""
        core = self._owner.core
        self.ws = ws
        self._socket_dead = False
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + self._connect_timeout) as scope:
                self._socket_scope = scope
                core.connect(now=anyio.current_time())
                self._owner.poke_timer()
                await self._owner.flush()
                await self._read_loop(ws, ready, scope)
            if scope.cancelled_caught and core.state is SessionState.CONNECTING:
                logger.warning("no answer to signalwire.connect within %g s", self._connect_timeout)
                self._socket_dead = True
        except ConnectionLostError as exc:
            logger.info("connection lost: %s", exc)
        finally:
            self._socket_scope = None
            self.ws = None
            core.connection_lost(now=anyio.current_time())
            with anyio.CancelScope(shield=True):
                if self._socket_dead:
                    await ws.abort()
                else:
                    await ws.aclose(timeout=self._close_timeout)

    async def _read_loop(
        self, ws: Transport, ready: Callable[[], None], scope: anyio.CancelScope
    ) -> None:
        owner = self._owner
        core = owner.core
        receive = core.receive
        redact_events = self._redactor.events
        clock = owner.clock
        while True:
            try:
                texts = await ws.receive_texts()
            except ProtocolViolationError as exc:
                logger.warning("server broke the protocol: %s", exc)
                continue
            now = clock()
            if core.state is SessionState.READY:
                # The usual batch: no connect is outstanding, so no frame here can answer
                # one; the frames' events are masked and dispatched once per read.
                events: list[Event] = []
                for text in texts:
                    try:
                        events += receive(text, now=now)
                    except RemoteProtocolError as exc:
                        self._protocol_error(exc)
                if events:
                    owner.dispatch(redact_events(events))
            else:
                for text in texts:
                    self._receive_connecting(text, now, ready, scope)
            owner.poke_timer()
            await owner.flush()

    def _receive_connecting(
        self, text: str, now: float, ready: Callable[[], None], scope: anyio.CancelScope
    ) -> None:
        """One frame while the session is not READY: a connect reply may be among them."""
        core = self._owner.core
        try:
            events = self._redactor.events(core.receive(text, now=now))
        except RemoteProtocolError as exc:
            self._protocol_error(exc)
            return
        for event in events:
            if isinstance(event, Connected):
                scope.deadline = math.inf
                ready()
            elif isinstance(event, ConnectFailed):
                if event.retry_fresh:
                    core.connect(now=now)
                elif event.code == AUTHENTICATION_FAILED:
                    raise AuthenticationError(event.message, code=event.code)
                else:  # any other refusal is the server's trouble: try again later
                    raise ConnectionLostError(
                        f"signalwire.connect refused: {event.message}", code=event.code
                    )
        self._owner.dispatch(events)

    def _protocol_error(self, exc: RemoteProtocolError) -> None:
        logger.warning("server broke the protocol: %s", self._redactor.text(str(exc)))

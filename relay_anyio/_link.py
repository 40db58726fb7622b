"""The socket side of ``RelayClient``: connect, handshake, read, reconnect.

``Link.supervise`` runs for the client's whole life: it opens a socket, sends
``signalwire.connect`` through the core, reads frames into the core (dispatching the
events it returns) and, when the socket dies, reconnects with backoff and jitter so the
core can resume the session. Everything else (commands, timers, the writer, events) is
the client's.

Invariants: at most one socket at a time (``ws``); the core hears ``connection_lost``
exactly once per socket; credentials refused ``auth_attempts`` times in a row are final
(stored on the client, raised from ``async with`` if no session ever started); a socket
that opens but never completes the handshake counts as a failed connect attempt.
"""

from __future__ import annotations

import logging
import math
import random
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from relay_proto import Connected, ConnectFailed, RemoteProtocolError, SessionState

from ._errors import AuthenticationError, ConnectionLostError, ProtocolViolationError
from ._transport import ParsedURL, WebSocket, connect_websocket

if TYPE_CHECKING:
    from ._client import RelayClient

logger = logging.getLogger("relay_anyio")

#: The JSON-RPC error code of ``signalwire.connect`` for refused credentials.
AUTHENTICATION_FAILED = -32002


class Link:
    """One client's connection, across reconnects."""

    def __init__(
        self,
        client: RelayClient,
        url: ParsedURL,
        *,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float,
        connect_attempts: int,
        auth_attempts: int,
        backoff_initial: float,
        backoff_max: float,
        close_timeout: float,
        write_timeout: float,
        max_message_size: int,
    ) -> None:
        self._client = client
        self.url = url
        self._ssl_context = ssl_context
        self._connect_timeout = connect_timeout
        self._connect_attempts = connect_attempts
        self._auth_attempts = auth_attempts
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._close_timeout = close_timeout
        self._write_timeout = write_timeout
        self._max_message_size = max_message_size
        #: The open socket, or None between sockets.
        self.ws: WebSocket | None = None
        self._socket_scope: anyio.CancelScope | None = None
        self._socket_dead = False
        #: Sockets that completed the handshake so far (1 + reconnects).
        self.connections = 0

    async def supervise(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        # Cancellable until the first session is up (``__aenter__`` may be cancelled while
        # connecting); shielded from then on, so that a cancellation of the code around
        # ``async with client`` cannot kill the reader before ``__aexit__`` has hung up
        # (``_stop_background`` ends it).
        with anyio.CancelScope() as scope:
            self._client._background.append(scope)
            await self._reconnect_loop(scope, task_status)

    async def _reconnect_loop(
        self, scope: anyio.CancelScope, task_status: anyio.abc.TaskStatus[None]
    ) -> None:
        started = False
        backoff = self._backoff_initial
        connect_failures = 0
        auth_failures = 0

        def ready() -> None:
            nonlocal started, backoff, auth_failures, connect_failures
            backoff, auth_failures, connect_failures = self._backoff_initial, 0, 0
            self.connections += 1
            if not started:
                started = True
                scope.shield = True
                task_status.started()

        while not self._client._stopping:
            try:
                ws = await connect_websocket(
                    self.url,
                    ssl_context=self._ssl_context,
                    connect_timeout=self._connect_timeout,
                    max_message_size=self._max_message_size,
                    write_timeout=self._write_timeout,
                )
            except ConnectionLostError as exc:
                connect_failures += 1
                if not started and connect_failures >= self._connect_attempts:
                    raise
                logger.warning("connect to %s failed: %s", self.url, exc)
            else:
                before = self.connections
                try:
                    await self._run_socket(ws, ready)
                except AuthenticationError as exc:
                    # PROTOCOL.md 2.1: refused credentials are final only before any
                    # session was up; afterwards keep trying (the client stays supervised).
                    auth_failures += 1
                    if not started and auth_failures >= self._auth_attempts:
                        self._client._failure = exc
                        self._client._fail_waiters(exc)
                        raise
                    logger.warning("authentication failed: %s", exc)
                else:
                    if self.connections == before and not self._client._stopping:
                        # The socket opened but the session never started (no answer to
                        # signalwire.connect, or closed first): a failed connect attempt.
                        connect_failures += 1
                        if not started and connect_failures >= self._connect_attempts:
                            raise ConnectionLostError(
                                f"{self.url}: the server did not answer signalwire.connect"
                            )
            if self._client._stopping:
                return
            await anyio.sleep(backoff * random.uniform(0.5, 1.0))
            backoff = min(backoff * 2, self._backoff_max)

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

    async def _run_socket(self, ws: WebSocket, ready: Callable[[], None]) -> None:
        """Handshake and read one socket until it dies. Raises AuthenticationError."""
        core = self._client._core
        self.ws = ws
        self._socket_dead = False
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + self._connect_timeout) as scope:
                self._socket_scope = scope
                core.connect(now=anyio.current_time())
                self._client._poke_timer()
                await self._client._flush()
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
        self, ws: WebSocket, ready: Callable[[], None], scope: anyio.CancelScope
    ) -> None:
        core = self._client._core
        while True:
            try:
                texts = await ws.receive_texts()
            except ProtocolViolationError as exc:
                logger.warning("server broke the protocol: %s", exc)
                continue
            now = anyio.current_time()
            for text in texts:
                try:
                    events = core.receive(text, now=now)
                except RemoteProtocolError as exc:
                    logger.warning("server broke the protocol: %s", exc)
                    continue
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
                self._client._dispatch(events)
            self._client._poke_timer()
            await self._client._flush()

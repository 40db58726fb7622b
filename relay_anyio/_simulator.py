"""The local RELAY simulator on a real socket: ``relay_proto``'s server role over wsproto.

``async with serve_simulator(...) as sim:`` listens on loopback, serves every WebSocket
with one ``ServerConnection`` of a shared ``Simulator``, and drives its clock from
``anyio.current_time()``. ``sim.url`` is the ``ws://`` URL to give the client;
``sim.live_calls()`` reports the calls still up (for "no leaked call" assertions).

Invariants: one task per socket reads it; one timer task runs the simulator's timers;
after any input, every connection with something queued is flushed (one write per
connection; ``Simulator.ready_connections()`` says which), and a connection the simulator
marks closed is closed. Everything stops with the context.

Each socket is numbered in order of arrival; ``relay_anyio.simulator`` logs at INFO when
one opens a session (new or resumed) and when one closes, with the reason (the client went
away, a server ping went unanswered, a drop fault, ...): ``relay serve --verbose`` prints
these lines.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc

from relay_proto import RemoteProtocolError
from relay_proto.simulator import (
    DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT,
    CallScript,
    LiveAction,
    LiveCall,
    LiveMessage,
    Scenario,
    ServerConnection,
    Simulator,
    uuid4_batched,
)

from ._control import serve_control
from ._errors import ConnectionLostError, ProtocolViolationError, RelayError
from ._handshake import accept_websocket
from ._websocket import WebSocket

logger = logging.getLogger("relay_anyio.simulator")


class SimulatorServer:
    """A running simulator. Create it with ``serve_simulator``."""

    def __init__(self, simulator: Simulator, host: str, port: int) -> None:
        self.simulator = simulator
        self.host = host
        self.port = port
        #: The loopback port of the control socket (``serve_simulator(control_port=...)``),
        #: or None when there is none.
        self.control_port: int | None = None
        self._sockets: dict[ServerConnection, WebSocket] = {}
        self._numbers: dict[ServerConnection, int] = {}
        self._accepted = 0
        self._wakeup = anyio.Event()
        self._timer_at: float | None = None

    def __repr__(self) -> str:
        return f"<SimulatorServer url={self.url!r} connections={len(self._sockets)}>"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    @property
    def scenario(self) -> Scenario:
        return self.simulator.scenario

    @scenario.setter
    def scenario(self, scenario: Scenario) -> None:
        self.simulator.scenario = scenario

    def live_calls(self) -> list[LiveCall]:
        return self.simulator.live_calls()

    def all_calls(self) -> list[LiveCall]:
        return self.simulator.all_calls()

    def live_messages(self) -> list[LiveMessage]:
        return self.simulator.live_messages()

    def all_messages(self) -> list[LiveMessage]:
        return self.simulator.all_messages()

    def live_actions(self) -> list[LiveAction]:
        """The running actions (record, collect, tap, ...): none once their calls end."""
        return self.simulator.live_actions()

    @property
    def connection_count(self) -> int:
        return len(self._sockets)

    async def inject_inbound_call(
        self,
        *,
        context: str,
        from_number: str,
        to_number: str,
        script: CallScript | Mapping[str, object] | None = None,
    ) -> str:
        """Offer an inbound call; ``script``: what the caller does once answered
        (``{"input": ..., "record": ...}``; ``None``: the scenario's, by ``from_number``)."""
        call_id = self.simulator.inject_inbound_call(
            context=context,
            from_number=from_number,
            to_number=to_number,
            now=anyio.current_time(),
            script=script,
        )
        await self._after_input()
        return call_id

    async def inject_message(
        self,
        *,
        context: str,
        from_number: str,
        to_number: str,
        body: str = "",
        media: list[str] | None = None,
        tags: list[str] | None = None,
    ) -> str:
        """Deliver an inbound message (``messaging.receive``); returns its message_id."""
        message_id = self.simulator.inject_message(
            context=context,
            from_number=from_number,
            to_number=to_number,
            body=body,
            media=media,
            tags=tags,
            now=anyio.current_time(),
        )
        await self._after_input()
        return message_id

    async def disconnect_all(self, *, restart: bool = False) -> None:
        """Send ``signalwire.disconnect`` on every socket."""
        for conn in list(self._sockets):
            conn.send_disconnect(restart=restart)
        await self._after_input()

    async def drop_all(self) -> None:
        """Drop every socket abruptly (no close handshake), as a network failure would."""
        for ws in list(self._sockets.values()):
            await ws.abort()

    async def serve(self, listener: anyio.abc.Listener[anyio.abc.ByteStream]) -> None:
        """Serve every connection of ``listener`` and run the simulator's clock, until
        cancelled (``serve_simulator`` does this for its block)."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, self._serve_socket)
            tg.start_soon(self._timer_loop)

    # ------------------------------------------------------------------ internals

    async def _after_input(self) -> None:
        simulator = self.simulator
        deadline = simulator.next_deadline()
        if deadline is not None and deadline <= (now := anyio.current_time()):
            # Timers already due (a call set to answer at once) run here rather than by
            # waking the timer task: the same order of frames, but their events share this
            # write instead of costing a task switch and a write of their own.
            simulator.handle_timer(now)
            deadline = simulator.next_deadline()
        if deadline is not None and (self._timer_at is None or deadline < self._timer_at):
            self._wakeup.set()
        # Only the sockets with something to write or to close: most inputs (event acks)
        # queue nothing, and a send on an idle socket still costs a lock round-trip.
        sockets = self._sockets
        for conn in self.simulator.ready_connections():
            ws = sockets.get(conn)
            if ws is None:  # not ours (a test driving the simulator directly)
                continue
            try:
                await ws.send_from(conn.data_to_send)
            except RelayError:
                continue
            if conn.closed:
                logger.info(
                    "socket %d closed by the simulator: %s", self._numbers[conn], conn.close_reason
                )
                await ws.abort()

    async def _timer_loop(self) -> None:
        while True:
            self._wakeup = anyio.Event()
            self._timer_at = self.simulator.next_deadline()
            deadline = math.inf if self._timer_at is None else self._timer_at
            with anyio.CancelScope(deadline=deadline):
                await self._wakeup.wait()
            self._timer_at = None
            self.simulator.handle_timer(anyio.current_time())
            await self._after_input()

    async def _serve_socket(self, stream: anyio.abc.ByteStream) -> None:
        try:
            ws = await accept_websocket(stream)
        except RelayError as exc:
            logger.info("handshake failed: %s", exc)
            await stream.aclose()
            return
        conn = self.simulator.open_connection(anyio.current_time())
        self._sockets[conn] = ws
        self._accepted += 1
        self._numbers[conn] = number = self._accepted
        try:
            while True:
                try:
                    texts = await ws.receive_texts()
                except ProtocolViolationError as exc:
                    logger.info("client broke the protocol: %s", exc)
                    continue
                now = anyio.current_time()
                had_session = conn.protocol is not None
                for text in texts:
                    try:
                        conn.receive(text, now)
                    except RemoteProtocolError as exc:
                        logger.info("client broke the protocol: %s", exc)
                if not had_session and conn.protocol is not None:
                    how = "resumed" if conn.session_restored else "new"
                    logger.info("socket %d connected: session %s", number, how)
                await self._after_input()
        except ConnectionLostError:
            if not conn.closed:
                logger.info("socket %d closed by the client", number)
        finally:
            del self._sockets[conn]
            del self._numbers[conn]
            conn.connection_lost(anyio.current_time())
            with anyio.CancelScope(shield=True):
                await ws.aclose(timeout=1.0)


Listener = anyio.abc.Listener[anyio.abc.SocketStream]


def _port(listener: Listener) -> int:
    return int(listener.extra(anyio.abc.SocketAttribute.local_port))


@asynccontextmanager
async def _listeners(
    host: str, port: int, control_port: int | None
) -> AsyncIterator[tuple[Listener, Listener | None]]:
    """The simulator's listener, and the control socket's on loopback (whatever ``host``
    is) when ``control_port`` is given; both closed at the end."""
    async with await anyio.create_tcp_listener(local_host=host, local_port=port) as listener:
        if control_port is None:
            yield listener, None
            return
        control = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=control_port)
        async with control:
            yield listener, control


@asynccontextmanager
async def serve_simulator(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    credentials: Mapping[str, str] | None = None,
    scenario: Scenario | Mapping[str, Any] | None = None,
    resume_grace: float = 30.0,
    ping_interval: float | None = DEFAULT_PING_INTERVAL,
    ping_timeout: float = DEFAULT_PING_TIMEOUT,
    control_port: int | None = None,
) -> AsyncIterator[SimulatorServer]:
    """Run a simulator on ``host:port`` (port 0 picks a free one) for the block's duration.

    ``credentials`` maps project ids to tokens (None accepts any); ``scenario`` is a
    ``Scenario`` or its dict form (see docs/simulator.md). The server pings each socket
    ``ping_interval`` seconds after its last pong (``None``: never) and closes one whose
    ping stays unanswered ``ping_timeout`` seconds; both must be positive
    (``LocalProtocolError`` otherwise). ``control_port`` (0: any) opens the control
    socket on 127.0.0.1 (``sim.control_port``; docs/simulator.md, "Many consumers").
    """
    if isinstance(scenario, Mapping):
        scenario = Scenario.from_dict(scenario)
    simulator = Simulator(
        credentials=credentials,
        scenario=scenario,
        resume_grace=resume_grace,
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        id_factory=uuid4_batched(),
        epoch=time.time() - anyio.current_time(),
    )
    async with _listeners(host, port, control_port) as (listener, control):
        server = SimulatorServer(simulator, host, _port(listener))
        if control is not None:
            server.control_port = _port(control)
        body_error: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, listener)
            if control is not None:
                tg.start_soon(serve_control, server, control)
            try:
                yield server
            except Exception as exc:
                # Re-raised below, outside the task group, so that the block's own error
                # comes out as itself rather than wrapped in an ExceptionGroup.
                body_error = exc
            finally:
                tg.cancel_scope.cancel()
    if body_error is not None:
        raise body_error

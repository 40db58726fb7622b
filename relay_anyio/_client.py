"""``RelayClient``: the core driven over wsproto on anyio (asyncio or trio).

Structure inside ``async with client:`` -- one task group holding:

* the supervisor, started with ``tg.start`` so the first handshake's failure reaches
  ``__aenter__`` directly: it connects, runs the socket's read loop, and reconnects with
  backoff and jitter, resuming the session;
* the timer task, which sleeps until the core's next deadline (dial timeouts, tombstones,
  max_duration, pings, silence watchdog) and runs ``handle_timer``;
* the writer task, which drains the core's outbox into one socket write whenever a
  command asks (under load many commands share one drain and one write);
* inbound call handlers registered with ``on_call``.

The socket side (connect, handshake, read loop, reconnect) lives in ``_link.Link``.

Invariants:

* Core state is updated synchronously before any ``await``; the core's outbox is drained
  inside the socket's write lock, so wire order is state order. One write per drain.
  The read loop flushes inline after each batch it reads (acks first, and reading slows
  down when writing does: backpressure); commands wake the writer.
* User coroutines wait on per-request slots (dial by tag, request by id), never on a
  shared queue; the read loop never waits on user code.
* A cancelled ``dial()`` calls ``cancel_dial`` (the core queues ``calling.end`` for every
  leg), wakes the writer and re-raises at once: the hang-ups go out from the writer task,
  which the caller's cancellation does not reach.
* Internal failures are stored and re-raised from the user's next call; no task escapes
  the task group and no ``ExceptionGroup`` leaves ``async with`` in ordinary failures.
"""

from __future__ import annotations

import logging
import math
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, TypeVar

import anyio
import anyio.abc
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from relay_proto import (
    CallLost,
    CallState,
    CallStateChanged,
    ClientConnection,
    Connected,
    ConnectFailed,
    DialAnswered,
    DialFailed,
    DialFailureCause,
    DialTimedOut,
    DisconnectRequested,
    Event,
    InboundCall,
    LivenessLost,
    LocalProtocolError,
    MaxDurationReached,
    PlayStateChanged,
    RequestFailed,
    RequestSucceeded,
    UnhandledEvent,
)
from relay_proto import _validate as validate

from ._calls import Call
from ._errors import (
    CallGoneError,
    ConfigurationError,
    ConnectionLostError,
    DialFailedError,
    DialTimeoutError,
    RelayError,
    request_error,
)
from ._link import Link
from ._transport import DEFAULT_MAX_MESSAGE_SIZE, build_url
from ._waiters import InboundCalls, Slot

logger = logging.getLogger("relay_anyio")

T = TypeVar("T")
JSONObject = dict[str, Any]
AGENT = "relay-anyio/0.1"


class RelayClient:
    """A supervised, reconnecting RELAY client. Use it as ``async with client:``.

    Credentials: ``project`` + ``token``, or ``jwt_token``. Where to connect: ``host``
    (``wss://host``; default ``relay.signalwire.com``) or ``url`` (any ``ws://``/``wss://``
    URL; plain ``ws://`` only to loopback unless ``allow_insecure=True``).

    Timeouts: ``connect_timeout`` bounds opening a socket and the ``signalwire.connect``
    handshake; ``write_timeout`` bounds one socket write (a write that has started is
    finished or the socket is dropped); ``cleanup_timeout`` bounds the hang-ups made when
    leaving ``async with``; ``close_timeout`` bounds the WebSocket close handshake.
    Cancelling a command never waits on the network: its hang-ups are queued in the core
    and written by the writer task.
    """

    def __init__(
        self,
        *,
        project: str | None = None,
        token: str | None = None,
        jwt_token: str | None = None,
        host: str | None = None,
        url: str | None = None,
        path: str = "",
        contexts: Sequence[str] = (),
        ssl_context: ssl.SSLContext | None = None,
        allow_insecure: bool = False,
        agent: str = AGENT,
        connect_timeout: float = 10.0,
        connect_attempts: int = 3,
        auth_attempts: int = 3,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        ping_interval: float | None = 30.0,
        silence_timeout: float | None = 90.0,
        tombstone_grace: float = 60.0,
        max_queued: int = 10_000,
        cleanup_timeout: float = 5.0,
        close_timeout: float = 2.0,
        write_timeout: float = 10.0,
        hangup_on_exit: bool = True,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        inbound_buffer: int = 64,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        parsed_url = build_url(host=host, url=url, path=path, allow_insecure=allow_insecure)
        try:
            self._core = ClientConnection(
                project=project,
                token=token,
                jwt_token=jwt_token,
                contexts=contexts,
                agent=agent,
                ping_interval=ping_interval,
                silence_timeout=silence_timeout,
                tombstone_grace=tombstone_grace,
                max_queued=max_queued,
            )
            # The core's validators name the field; they are the adapter's too.
            timeouts = {
                name: validate.positive_number(name, value)
                for name, value in (
                    ("connect_timeout", connect_timeout),
                    ("backoff_initial", backoff_initial),
                    ("backoff_max", backoff_max),
                    ("cleanup_timeout", cleanup_timeout),
                    ("close_timeout", close_timeout),
                    ("write_timeout", write_timeout),
                )
            }
            attempts = validate.positive_int("connect_attempts", connect_attempts)
            auth = validate.positive_int("auth_attempts", auth_attempts)
            validate.positive_int("max_message_size", max_message_size)
            if isinstance(inbound_buffer, bool) or not isinstance(inbound_buffer, int):
                raise LocalProtocolError(
                    f"inbound_buffer: must be an int >= 0, got {inbound_buffer!r}"
                )
            if inbound_buffer < 0:
                raise LocalProtocolError(f"inbound_buffer: must be >= 0, got {inbound_buffer}")
        except LocalProtocolError as exc:
            raise ConfigurationError(str(exc)) from None
        self._cleanup_timeout = timeouts["cleanup_timeout"]
        self._close_timeout = timeouts["close_timeout"]
        self._link = Link(
            self,
            parsed_url,
            ssl_context=ssl_context,
            connect_timeout=timeouts["connect_timeout"],
            connect_attempts=attempts,
            auth_attempts=auth,
            backoff_initial=timeouts["backoff_initial"],
            backoff_max=timeouts["backoff_max"],
            close_timeout=timeouts["close_timeout"],
            write_timeout=timeouts["write_timeout"],
            max_message_size=max_message_size,
        )
        self._hangup_on_exit = hangup_on_exit
        self._on_event = on_event
        self._on_call: Callable[[Call], Awaitable[None]] | None = None
        self._inbound_buffer = inbound_buffer
        # Created by __aenter__ and closed by __aexit__ (an unclosed stream warns).
        self._inbound_send: MemoryObjectSendStream[Call] | None = None
        self._inbound_recv: MemoryObjectReceiveStream[Call] | None = None
        self._used = False

        self._background: list[anyio.CancelScope] = []
        self._exit_stack: AsyncExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._failure: RelayError | None = None
        self._closing = False  # no new user commands (set when __aexit__ starts)
        self._stopping = False  # no more reconnecting (set once the hang-ups are done)
        self._dials: dict[str, Slot[Call | DialFailed | DialTimedOut]] = {}
        self._requests: dict[str, Slot[JSONObject]] = {}
        self._calls: dict[str, Call] = {}
        self._timer_wakeup = anyio.Event()
        self._write_wanted = anyio.Event()
        self._timer_at: float | None = None

    def __repr__(self) -> str:
        return f"<RelayClient url={str(self._link.url)!r} state={self._core.state.value}>"

    # ------------------------------------------------------------------ public API

    @property
    def protocol(self) -> str | None:
        """The session's protocol string (it names the session; not a secret)."""
        return self._core.protocol

    @property
    def connections(self) -> int:
        """How many sockets have completed the handshake so far (1 + reconnects)."""
        return self._link.connections

    @property
    def calls(self) -> list[Call]:
        """Live calls owned by this client."""
        return list(self._calls.values())

    def on_call(self, handler: Callable[[Call], Awaitable[None]]) -> None:
        """Run ``handler(call)`` in the client's task group for every inbound call."""
        self._on_call = handler

    def inbound_calls(self) -> AsyncIterator[Call]:
        """Iterate over inbound calls (when no ``on_call`` handler is set).

        Up to ``inbound_buffer`` calls wait here for the iterator; beyond that an inbound
        call is refused (ended with ``busy``) rather than left ringing. The iteration ends
        when the client closes. It is a plain iterator, not a generator: ``break`` out of
        it freely, there is nothing to finalize.
        """
        receive = self._inbound_recv
        if receive is None:
            raise RuntimeError("use the client inside 'async with client:'")
        return InboundCalls(receive)

    async def dial(
        self,
        devices: Sequence[Sequence[JSONObject]],
        *,
        tag: str | None = None,
        max_duration: int | None = None,
        region: str | None = None,
        node_id: str | None = None,
        max_price_per_minute: float | None = None,
        dial_timeout: float = 120.0,
    ) -> Call:
        """Dial ``devices`` (outer list serial, inner lists in parallel); return the Call.

        Raises ``DialFailedError`` (every leg failed, or the server refused the dial),
        ``DialTimeoutError`` (``dial_timeout`` passed; ringing legs were hung up),
        ``ConnectionLostError`` (the session was lost and not restored), or
        ``ConfigurationError`` for invalid input (nothing was sent).
        """
        self._check_open()
        # Already cancelled: leave before the core queues anything (a queued frame would
        # go out with the next write, cancelled or not).
        await anyio.lowlevel.checkpoint_if_cancelled()
        try:
            tag = self._core.dial(
                devices,
                tag=tag,
                max_duration=max_duration,
                region=region,
                node_id=node_id,
                max_price_per_minute=max_price_per_minute,
                dial_timeout=dial_timeout,
                now=anyio.current_time(),
            )
        except LocalProtocolError as exc:
            raise ConfigurationError(str(exc)) from None
        slot: Slot[Call | DialFailed | DialTimedOut] = Slot()
        self._dials[tag] = slot
        self._poke_timer()
        self._want_write()
        try:
            outcome = await slot.wait()
        except BaseException:
            # Cancelled (or the client closed): nothing may stay alive under this tag --
            # not even a winner whose answer arrived just before the cancellation did. The
            # core queues the hang-ups at once; the writer task sends them (it is not
            # cancelled with this task), so cancelling never waits on the network.
            self._dials.pop(tag, None)
            if isinstance(slot.value, Call):
                self._forget_call(slot.value, "the dial was cancelled")
            if self._core.cancel_dial(tag, now=anyio.current_time()):
                self._want_write()
            raise
        del self._dials[tag]
        if isinstance(outcome, Call):
            return outcome  # possibly already ended: the far end may hang up at once
        if isinstance(outcome, DialTimedOut):
            raise DialTimeoutError(
                f"no answer within {dial_timeout:g} s; every leg was hung up",
                legs=outcome.legs,
                tag=tag,
            )
        if outcome.cause is DialFailureCause.CONNECTION_LOST:
            raise ConnectionLostError(outcome.message)
        raise DialFailedError(
            "dial refused by the server: " + outcome.message
            if outcome.cause is DialFailureCause.REFUSED
            else "dial failed: no device answered",
            legs=outcome.legs,
            reason=outcome.reason,
            source=outcome.source,
            code=outcome.code,
            tag=tag,
        )

    async def execute(self, method: str, params: JSONObject | None = None) -> JSONObject:
        """Send any request (not tied to a call); return its result object."""
        return await self._command(lambda core: core.execute(method, params or {}))

    async def ping(self) -> JSONObject:
        return await self._command(lambda core: core.ping(now=anyio.current_time()))

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> RelayClient:
        if self._used:
            raise RuntimeError("a RelayClient is used once: it is not reentrant or reusable")
        self._used = True
        self._inbound_send, self._inbound_recv = anyio.create_memory_object_stream[Call](
            self._inbound_buffer
        )
        stack = AsyncExitStack()
        stack.callback(self._close_inbound)
        tg = await stack.enter_async_context(anyio.create_task_group())
        self._exit_stack, self._tg = stack, tg
        try:
            await tg.start(self._link.supervise)
            tg.start_soon(self._timer_loop)
            tg.start_soon(self._writer_loop)
        except BaseException as exc:
            self._closing = self._stopping = True
            self._stop_background()
            tg.cancel_scope.cancel()
            self._exit_stack = None
            await stack.aclose()
            if isinstance(exc, RelayError):
                raise exc from exc.__cause__
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, tg = self._exit_stack, self._tg
        assert stack is not None
        assert tg is not None
        try:
            with anyio.CancelScope(shield=True):
                await self._shutdown()
        finally:
            self._stop_background()
            tg.cancel_scope.cancel()
            self._exit_stack = None
            await stack.aclose()

    def _stop_background(self) -> None:
        for scope in self._background:
            scope.cancel()

    async def _shutdown(self) -> None:
        """Hang up what this client still owns, bounded by ``cleanup_timeout``.

        The supervisor keeps reconnecting meanwhile: hang-ups queued while the socket is
        down, or lost with it, go out on the next one.
        """
        self._closing = True
        now = anyio.current_time()
        if self._hangup_on_exit and self._failure is None:
            for tag in list(self._dials):
                self._core.cancel_dial(tag, now=now)
            with anyio.move_on_after(self._cleanup_timeout):
                await self._flush()
                async with anyio.create_task_group() as tg:
                    for call in list(self._calls.values()):
                        tg.start_soon(self._hang_up_for_exit, call)
        self._stopping = True
        self._fail_waiters(ConnectionLostError("the client was closed"))
        if self._inbound_send is not None:
            self._inbound_send.close()
        if self._link.ws is not None:
            await self._link.ws.aclose(timeout=self._close_timeout)

    async def _hang_up_for_exit(self, call: Call) -> None:
        """End ``call`` and wait until it has ended; ask again if the request was lost
        with a socket (a plain ``calling.end`` is not re-sent by the core)."""
        while not call.ended and self._core.get_call(call.call_id) is not None:
            try:
                await self._request(lambda core: core.end(call.call_id))
            except ConnectionLostError:
                continue  # the reply was lost with the socket: ask the next one
            except RelayError:
                return  # refused or gone: nothing more this client can do
            await call.wait_for_ended()

    def _close_inbound(self) -> None:
        for stream in (self._inbound_send, self._inbound_recv):
            if stream is not None:
                stream.close()

    # ------------------------------------------------------------------ commands

    def _check_open(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._tg is None or self._closing:
            raise RuntimeError("use the client inside 'async with client:'")

    async def _command(
        self, start: Callable[[ClientConnection], str], call: Call | None = None
    ) -> JSONObject:
        """Run one core command that sends a request; wait for and return its result."""
        self._check_open()
        if call is not None and call.ended:
            raise CallGoneError(f"call {call.call_id} has ended", code=410)
        await anyio.lowlevel.checkpoint_if_cancelled()
        try:
            return await self._request(start)
        except LocalProtocolError as exc:
            if call is not None and self._core.get_call(call.call_id) is None:
                raise CallGoneError(f"call {call.call_id} has ended", code=410) from None
            raise ConfigurationError(str(exc)) from None

    async def _request(self, start: Callable[[ClientConnection], str]) -> JSONObject:
        """Queue one request in the core, write it, wait for its result (no open check)."""
        request_id = start(self._core)
        slot: Slot[JSONObject] = Slot()
        self._requests[request_id] = slot
        self._want_write()
        try:
            return await slot.wait()
        finally:
            self._requests.pop(request_id, None)

    def _want_write(self) -> None:
        """Ask the writer task to flush the core's outbox (cheap when already asked)."""
        wanted = self._write_wanted
        if not wanted.is_set():
            wanted.set()

    async def _writer_loop(self) -> None:
        """Flush on request: under load, many commands share one drain and one write."""
        with anyio.CancelScope(shield=True) as scope:  # ended by _stop_background
            self._background.append(scope)
            while True:
                await self._write_wanted.wait()
                self._write_wanted = anyio.Event()
                await self._flush()

    async def _flush(self) -> None:
        """Write everything the core has queued, in one write, if a socket is up."""
        ws = self._link.ws
        if ws is None or not self._core.has_data_to_send:
            return  # nothing queued, or a concurrent flush already took it
        try:
            await ws.send_from(self._core.data_to_send)
        except RelayError as exc:
            logger.debug("write failed: %s", exc)
            if self._link.ws is ws:  # not a newer socket opened meanwhile
                self._link.abort()

    # ------------------------------------------------------------------ events

    def _dispatch(self, events: list[Event]) -> None:
        hook = self._on_event
        for event in events:
            if hook is not None:
                try:
                    hook(event)
                except Exception:
                    logger.exception("on_event hook raised")
            if isinstance(event, CallStateChanged):
                call = self._calls.get(event.call_id)
                if call is not None:
                    call._set_state(event.state, event.end_reason)
                    if event.state is CallState.ENDED:
                        del self._calls[event.call_id]
            elif isinstance(event, PlayStateChanged):
                call = self._calls.get(event.call_id)
                action = None if call is None else call._actions.get(event.control_id)
                if action is not None:
                    action._update(event.state)
                    if event.state.terminal:
                        del call._actions[event.control_id]  # type: ignore[union-attr]
            elif isinstance(event, RequestSucceeded):
                slot = self._requests.get(event.request_id)
                if slot is not None:
                    slot.set(event.result)
            elif isinstance(event, RequestFailed):
                self._on_request_failed(event)
            elif isinstance(event, DialAnswered | DialFailed | DialTimedOut):
                self._on_dial_outcome(event)
            elif isinstance(event, CallLost):
                lost = self._calls.pop(event.call_id, None)
                if lost is not None:
                    lost._finish(
                        CallGoneError("the call no longer exists", code=410)
                        if event.gone
                        else ConnectionLostError("the session was lost with the call")
                    )
            elif isinstance(event, InboundCall):
                self._on_inbound(event)
            elif isinstance(event, LivenessLost):
                logger.warning("connection is not alive (%s); reconnecting", event.reason)
                self._link.abort(dead=True)
            elif isinstance(event, DisconnectRequested):
                logger.info("server asked to disconnect (restart=%s)", event.restart)
                self._link.close_within(self._close_timeout)
            elif isinstance(event, MaxDurationReached):
                logger.info("call %s reached its max_duration; hanging up", event.call_id)
            elif isinstance(event, Connected | ConnectFailed | UnhandledEvent):
                pass  # handled by the read loop / left to on_event

    def _on_request_failed(self, event: RequestFailed) -> None:
        slot = self._requests.get(event.request_id)
        if slot is None:
            return
        if event.connection_lost:
            slot.set(ConnectionLostError(f"{event.method}: {event.message}"))
        else:
            slot.set(
                request_error(event.message, code=event.code, data=event.data, method=event.method)
            )

    def _on_dial_outcome(self, event: DialAnswered | DialFailed | DialTimedOut) -> None:
        slot = self._dials.get(event.tag)
        if not isinstance(event, DialAnswered):
            if slot is not None:
                slot.set(event)
            return
        info = event.call
        call = Call._from_info(self, info)
        if info.state is not CallState.ENDED:  # the core tracks it (not ended on arrival)
            self._calls[info.call_id] = call
        else:  # it ended in the same breath as it was answered
            for leg in event.legs:
                if leg.call_id == info.call_id:
                    call.end_reason = leg.end_reason
            call._finish(CallGoneError("the call has ended", code=410))
        if slot is not None:
            slot.set(call)
        elif self._core.cancel_dial(event.tag, now=anyio.current_time()):
            # Nobody waits for this dial any more (cannot happen while dial() keeps its
            # slot until cancel_dial); never leak the winner.
            self._forget_call(call, "the dial was abandoned")

    def _forget_call(self, call: Call, why: str) -> None:
        """A call that will never be handed to user code (its dial was abandoned)."""
        if self._calls.get(call.call_id) is call:
            del self._calls[call.call_id]
        call._finish(CallGoneError(why, code=410))

    def _on_inbound(self, event: InboundCall) -> None:
        info = event.call
        call = Call._from_info(self, info)
        self._calls[info.call_id] = call
        if self._closing:
            # Leaving ``async with``: nobody will handle it, and the exit hang-ups have
            # already been counted. Refuse it rather than leave it ringing.
            logger.warning("inbound call %s refused: the client is closing", info.call_id)
            self._core.end(info.call_id, "busy")
            return
        if self._on_call is not None and self._tg is not None:
            self._tg.start_soon(self._run_handler, self._on_call, call)
            return
        try:
            if self._inbound_send is None:
                raise anyio.ClosedResourceError
            self._inbound_send.send_nowait(call)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            # Nobody can take this call: refuse it rather than leave it ringing.
            logger.warning("inbound call %s refused: nobody is taking calls", info.call_id)
            self._core.end(info.call_id, "busy")

    async def _run_handler(self, handler: Callable[[Call], Awaitable[None]], call: Call) -> None:
        try:
            await handler(call)
        except Exception:
            logger.exception("inbound call handler raised for call %s", call.call_id)

    def _fail_waiters(self, error: RelayError) -> None:
        for dial_slot in self._dials.values():
            dial_slot.set(error)
        for slot in self._requests.values():
            slot.set(error)
        for call in self._calls.values():
            call._finish(error)

    # ------------------------------------------------------------------ timers

    def _poke_timer(self) -> None:
        deadline = self._core.next_deadline()
        if deadline is not None and (self._timer_at is None or deadline < self._timer_at):
            self._timer_wakeup.set()

    async def _timer_loop(self) -> None:
        # Shielded: a cancellation of the code around ``async with client`` must not stop
        # the timers before ``__aexit__`` has hung up (``_stop_background`` ends it).
        with anyio.CancelScope(shield=True) as scope:
            self._background.append(scope)
            await self._run_timers()

    async def _run_timers(self) -> None:
        while True:
            self._timer_wakeup = anyio.Event()
            self._timer_at = self._core.next_deadline()
            with anyio.CancelScope(deadline=math.inf if self._timer_at is None else self._timer_at):
                await self._timer_wakeup.wait()
            self._timer_at = None
            events = self._core.handle_timer(now=anyio.current_time())
            if events:
                self._dispatch(events)
            await self._flush()

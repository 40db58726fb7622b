"""``Session``: the core driven over sockets, with its tasks, for one ``RelayClient``.

Inside ``async with client:`` the session holds one task group with: the supervisor
(``_link.Link.supervise``, started with ``tg.start`` so the first handshake's failure reaches
``__aenter__``: it connects, runs the read loop, reconnects with backoff and jitter and
resumes); the timer task (sleeps until the core's next deadline, runs ``handle_timer``, wakes
the writer: it never writes, so a slow write cannot delay a timer); the writer task (drains
the core's outbox into one socket write whenever a command asks); the ``on_call`` handlers
(at most ``max_handlers``, ``_inbound``); a call nobody here can take is handed on
(``_handoff``: passed, or ended busy).

Invariants:

* The session keeps no protocol state of its own. Its call registry (call_id -> ``Call``)
  is changed only by ``dispatch`` and ``_apply`` (one exhaustive ``match``) over the
  core's events: a call enters on ``DialAnswered`` / ``InboundCall`` and leaves on its
  ``ENDED`` state or ``CallLost``, so its keys follow the core's live calls. A ``Call`` of a
  cancelled dial, or a refused inbound one, is finished at once and leaves with its end.
* Core state is updated synchronously before any ``await``; the outbox is drained inside the
  socket's write lock (wire order is state order; one write per drain). The read loop
  flushes inline after each read (acks first; backpressure); commands wake the writer.
* User coroutines wait on per-request slots (dial by tag, request by id), never on a
  shared queue, and never longer than ``request_timeout`` for a reply (a dial: its
  ``dial_timeout``); the read loop never waits on user code.
* A cancelled ``dial()`` calls ``cancel_dial`` (``calling.end`` for every leg), wakes the
  writer and re-raises: the hang-ups go out from the writer, out of the caller's reach.
* Internal failures are stored and re-raised from the user's next call; no task escapes
  the task group and no ``ExceptionGroup`` leaves ``async with`` in ordinary failures.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any, assert_never

import anyio
import anyio.abc
import anyio.lowlevel

from relay_proto import (
    ActionStateChanged,
    CallLost,
    CallState,
    CallStateChanged,
    ClientConnection,
    Connected,
    ConnectFailed,
    ConnectStateChanged,
    DialAnswered,
    DialFailed,
    DialTimedOut,
    DisconnectRequested,
    Event,
    InboundCall,
    InboundMessage,
    LivenessLost,
    LocalProtocolError,
    MaxDurationReached,
    MessageStateChanged,
    RequestFailed,
    RequestSucceeded,
    UnhandledEvent,
    UnknownState,
    UnreadableEvent,
)

from ._call_base import CallBase
from ._calls import Call
from ._errors import (
    CallGoneError,
    ConfigurationError,
    ConnectionLostError,
    RelayError,
    RequestTimeoutError,
    dial_error,
    request_error,
)
from ._handoff import Handoff, lost_error
from ._inbound import Inbound
from ._link import Link, TransportFactory
from ._options import Limits, Reconnect, Timeouts
from ._surface import Surface
from ._timer import TimerTask
from ._waiters import Flag, Slot, cancel_check, event_factory, loop_clock, wait_flag

logger = logging.getLogger("relay_anyio")

JSONObject = dict[str, Any]
DialOutcome = Call | DialFailed | DialTimedOut
Start = Callable[[ClientConnection], str]  # queues one request, returns its id


class Session:
    """One client's core, sockets and tasks. ``RelayClient`` is its public face."""

    def __init__(
        self,
        core: ClientConnection,
        connect: TransportFactory,
        *,
        name: str,
        timeouts: Timeouts,
        reconnect: Reconnect,
        limits: Limits,
        hangup_on_exit: bool,
        on_event: Callable[[Event], None] | None,
    ) -> None:
        self._core = core
        self._link = Link(self, connect, name=name, timeouts=timeouts, reconnect=reconnect)
        self._cleanup_timeout = timeouts.cleanup
        self._close_timeout = timeouts.close
        self._request_timeout = timeouts.request
        self._timeout_message = f"no reply within {timeouts.request:g} s (request_timeout)"
        self._hangup_on_exit = hangup_on_exit
        self._on_event = on_event
        self.inbound = Inbound[Call](buffer=limits.inbound_buffer, max_handlers=limits.max_handlers)
        self._used = False
        self._background: list[anyio.CancelScope] = []
        self._exit_stack: AsyncExitStack | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._failure: RelayError | None = None
        self._closing = False  # no new user commands (set when stop() starts)
        self._stopping = False  # no more reconnecting (set once the hang-ups are done)
        self._dials: dict[str, Slot[DialOutcome]] = {}
        self._requests: dict[str, Slot[JSONObject]] = {}
        self._calls: dict[str, Call] = {}
        self.surface = Surface(self, self._calls, core, limits)
        self.handoff = Handoff(self, self._request, self._hang_up_for_exit, limits, timeouts)
        self._write_wanted: Flag = anyio.Event()
        # The loop's own primitives once started (``_waiters``: no backend look-up per call).
        self.new_event: Callable[[], Flag] = anyio.Event
        self.clock: Callable[[], float] = anyio.current_time
        self._cancel_check: Callable[[], Awaitable[None]] = anyio.lowlevel.checkpoint_if_cancelled
        self._timer = TimerTask(core, self.dispatch, self._want_write)

    # ------------------------------------------------------------------ what the link needs

    @property
    def core(self) -> ClientConnection:
        return self._core

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def request_timeout(self) -> float:
        return self._request_timeout

    def fail(self, error: RelayError) -> None:
        self._failure = error
        self._fail_waiters(error)

    # ------------------------------------------------------------------ state

    @property
    def connections(self) -> int:
        return self._link.connections

    @property
    def calls(self) -> list[Call]:
        """Live calls user code holds (an abandoned dial's winner is already finished)."""
        return [call for call in self._calls.values() if not call.ended]

    def inbound_calls(self) -> AsyncIterator[Call]:
        return self.inbound.items()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._used:
            raise RuntimeError("a RelayClient is used once: it is not reentrant or reusable")
        self._used = True
        self.new_event, self.clock = event_factory(), loop_clock()
        self._cancel_check = cancel_check()
        stack = AsyncExitStack()
        stack.callback(self.inbound.close)
        stack.callback(self.surface.close)
        tg = await stack.enter_async_context(anyio.create_task_group())
        self.inbound.open(tg)
        self.surface.open(tg)
        self._exit_stack, self._tg = stack, tg
        try:
            await tg.start(self._supervise)
            # The loops' shielded scopes exist (and are registered) before the tasks run,
            # so a stop that comes before their first step still ends them.
            tg.start_soon(self._timer.run, self._background_scope())
            tg.start_soon(self._writer_loop, self._background_scope())
        except BaseException as exc:
            self._closing = self._stopping = True
            self._stop_background()
            tg.cancel_scope.cancel()
            self._exit_stack = None
            await stack.aclose()
            if isinstance(exc, RelayError):
                raise exc from exc.__cause__
            raise

    async def stop(self) -> None:
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

    async def _supervise(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        # Cancellable until the first session is up (``__aenter__`` may be cancelled while
        # connecting), then shielded by the link; ``_stop_background`` ends it.
        with anyio.CancelScope() as scope:
            self._background.append(scope)
            await self._link.supervise(scope, task_status)

    def _background_scope(self) -> anyio.CancelScope:
        """A shielded scope for a background loop, ended only by ``_stop_background``."""
        scope = anyio.CancelScope(shield=True)
        self._background.append(scope)
        return scope

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
                await self.flush()
                async with anyio.create_task_group() as tg:
                    for call in self.calls:
                        tg.start_soon(self._hang_up_for_exit, call)
        with anyio.move_on_after(self._cleanup_timeout):
            await self.handoff.settled()  # the passes decided so far have their outcome
        self._stopping = True
        self._fail_waiters(ConnectionLostError("the client was closed"))
        self.inbound.end()
        self.surface.end()
        if self._link.ws is not None:
            await self._link.ws.aclose(timeout=self._close_timeout)

    async def _hang_up_for_exit(self, call: Call) -> None:
        """End ``call`` and wait until it has ended. A cleanup hang-up: never refused by
        ``max_queued``, and re-sent by the core if its reply is lost with a socket."""
        if call.ended or self._core.get_call(call.call_id) is None:
            return
        try:
            await self._request(lambda core: core.end(call.call_id, cleanup=True))
        except RelayError:
            return  # refused, gone or unanswered: nothing more this client can do
        await call.wait_for_ended()

    # ------------------------------------------------------------------ commands

    def check_open(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._tg is None or self._closing:
            raise RuntimeError("use the client inside 'async with client:'")

    async def dial(self, devices: Sequence[Sequence[JSONObject]], **options: Any) -> Call:
        """``RelayClient.dial``: queue the dial in the core and wait for its outcome."""
        self.check_open()
        # Already cancelled: leave before the core queues anything (a queued frame would
        # go out with the next write, cancelled or not).
        await self._cancel_check()
        try:
            tag = self._core.dial(devices, now=self.clock(), **options)
        except LocalProtocolError as exc:
            raise ConfigurationError(str(exc)) from None
        slot: Slot[DialOutcome] = Slot(self.new_event())
        self._dials[tag] = slot
        self.poke_timer()
        self._want_write()
        try:
            outcome = await slot.wait()
        except BaseException:
            # Cancelled (or the client closed): nothing may stay alive under this tag --
            # not even a winner whose answer arrived just before the cancellation did. The
            # core queues the hang-ups at once; the writer task sends them (it is not
            # cancelled with this task), so cancelling never waits on the network.
            del self._dials[tag]
            if isinstance(slot.value, Call):
                slot.value.finish(CallGoneError("the dial was cancelled", code=410))
            if self._core.cancel_dial(tag, now=anyio.current_time()):
                self._want_write()
            raise
        del self._dials[tag]
        if isinstance(outcome, Call):
            return outcome  # possibly already ended: the far end may hang up at once
        raise dial_error(outcome, options.get("dial_timeout", 120.0))

    async def command(
        self, start: Start, call: CallBase | None = None, give_up: bool = True
    ) -> JSONObject:
        """Run one core command that sends a request; wait for and return its result."""
        self.check_open()
        if call is not None and call.ended:
            raise CallGoneError(f"call {call.call_id} has ended", code=410)
        await self._cancel_check()
        try:
            return await self._request(start, give_up)
        except LocalProtocolError as exc:
            if call is not None and self._core.get_call(call.call_id) is None:
                raise CallGoneError(f"call {call.call_id} has ended", code=410) from None
            raise ConfigurationError(str(exc)) from None

    async def _request(self, start: Start, give_up: bool = True) -> JSONObject:
        """Queue one request in the core, write it, wait up to ``request_timeout`` for its
        result (no open check). On expiry only this request fails: the socket stays up and
        a late reply finds no slot, so it is dropped."""
        request_id = start(self._core)
        slot: Slot[JSONObject] = Slot(self.new_event())
        self._requests[request_id] = slot
        self._want_write()
        self._timer.expire_at(
            self.clock() + self._request_timeout,
            lambda: self._requests.get(request_id) is not slot,
            lambda: self._expire(request_id, slot, give_up),
        )
        try:
            return await slot.wait()
        finally:
            self._requests.pop(request_id, None)

    def _expire(self, request_id: str, slot: Slot[JSONObject], give_up: bool) -> None:
        """A request's wait ran out: fail it, and let the core give it up (not sent if it
        has not been: the caller was told it failed)."""
        slot.set(RequestTimeoutError(self._timeout_message))
        if give_up:  # else the caller abandons it (an action's start: ``abandon_action``)
            self._core.give_up(request_id)

    def expire_at(self, when: float, done: Callable[[], bool], expire: Callable[[], None]) -> None:
        """Bound a wait: at ``when`` the timer task calls ``expire()`` unless ``done()``."""
        self._timer.expire_at(when, done, expire)

    def poke_timer(self) -> None:
        """Wake the timer task if the core's next deadline moved earlier."""
        self._timer.poke()

    def send(self, start: Callable[[ClientConnection], object]) -> None:
        """Queue one request nobody waits for (its reply is dropped) and wake the writer;
        a request the core refuses (the call is gone, ``max_queued``) is only logged."""
        try:
            start(self._core)
        except LocalProtocolError as exc:
            logger.warning("request not sent: %s", exc)
            return
        self._want_write()

    def _want_write(self) -> None:
        """Ask the writer task to flush the core's outbox (cheap when already asked)."""
        self._write_wanted.set()  # a no-op when it is set already

    async def _writer_loop(self, scope: anyio.CancelScope) -> None:
        """Flush on request: under load, many commands share one drain and one write."""
        with scope:
            while True:
                await wait_flag(self._write_wanted)
                self._write_wanted = self.new_event()
                await self.flush()

    async def flush(self) -> None:
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

    def dispatch(self, events: list[Event]) -> None:
        """Act on the core's events, in order, after the ``on_event`` hook saw each."""
        hook, calls, listening = self._on_event, self._calls, self.surface.listening
        for event in events:
            if hook is not None:
                try:
                    hook(event)
                except Exception:
                    logger.exception("on_event hook raised")
            if listening:  # a ``Call.on``/``wait_for`` somewhere (else: no cost)
                self.surface.notify(event)
            if type(event) is CallStateChanged:  # most events: applied here (no call)
                call = calls.get(event.call_id)
                if call is not None:
                    call.apply_state(event.state, event.end_reason)
                    if event.state is CallState.ENDED:
                        del calls[event.call_id]
            else:
                self._apply(event)

    def _apply(self, event: Event) -> None:
        """With ``dispatch`` (which applies ``CallStateChanged``, the most frequent event,
        inline), the one place where events change the session: slots, the call registry,
        the ``Call`` and ``PlayAction`` objects, the link."""
        match event:  # the two of every dial first: each case is a class check
            case RequestSucceeded(request_id=request_id):
                if (slot := self._requests.get(request_id)) is not None:
                    slot.set(event.result)
            case DialAnswered():
                self._on_answered(event)
            case (
                ActionStateChanged()
                | ConnectStateChanged()
                | MessageStateChanged()
                | InboundMessage()
            ):
                self.surface.apply(event)
            case RequestFailed():
                self._on_request_failed(event)
            case DialFailed() | DialTimedOut():
                if (dial := self._dials.get(event.tag)) is not None:
                    dial.set(event)
            case CallLost(call_id=call_id):
                lost = self._calls.pop(call_id, None)
                if lost is not None:
                    lost.finish(lost_error(event))
            case InboundCall():
                self._on_inbound(event)
            case LivenessLost():
                logger.warning("connection is not alive (%s); reconnecting", event.reason)
                self._link.abort(dead=True)
            case DisconnectRequested():
                logger.info("server asked to disconnect (restart=%s)", event.restart)
                self._link.close_within(self._close_timeout)
            case MaxDurationReached():
                logger.info("call %s reached its max_duration; hanging up", event.call_id)
            case UnknownState() | UnreadableEvent():
                logger.warning("server event not understood; nothing changed: %r", event)
            case Connected() | ConnectFailed() | UnhandledEvent() | CallStateChanged():
                pass  # handled by the read loop / left to on_event / by ``dispatch`` inline
            case _:
                assert_never(event)

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

    def _on_answered(self, event: DialAnswered) -> None:
        info = event.call
        call = Call.from_info(self, info)
        if info.state is not CallState.ENDED:  # the core tracks it (not ended on arrival)
            self._calls[info.call_id] = call
        else:  # it ended in the same breath as it was answered
            for leg in event.legs:
                if leg.call_id == info.call_id:
                    call.end_reason = leg.end_reason
            call.finish(CallGoneError("the call has ended", code=410))
        slot = self._dials.get(event.tag)
        if slot is not None:
            slot.set(call)
        elif self._core.cancel_dial(event.tag, now=anyio.current_time()):
            # Nobody waits for this dial any more (cannot happen while dial() keeps its
            # slot until cancel_dial); never leak the winner.
            call.finish(CallGoneError("the dial was abandoned", code=410))

    def _on_inbound(self, event: InboundCall) -> None:
        info = event.call
        call = Call.from_info(self, info)
        self._calls[info.call_id] = call
        # Draining or leaving ``async with``, nobody will handle it; else a full buffer or
        # all handlers busy: hand it on (passed, or ended busy) rather than leave it ringing.
        why = self.handoff.closed(self._closing) or self.inbound.offer(call)
        if why is not None:
            self.handoff.refuse(call, why)

    def _fail_waiters(self, error: RelayError) -> None:
        for dial_slot in self._dials.values():
            dial_slot.set(error)
        for slot in self._requests.values():
            slot.set(error)
        for call in self._calls.values():
            call.finish(error)
        self.surface.fail(error)

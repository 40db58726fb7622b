"""Handing inbound calls on, for a client that is one of many consumers of its contexts:
the overflow policy and the graceful drain.

The platform offers each inbound call of a context to one of the sessions receiving it; a
consumer that cannot take a call hands it back with ``calling.pass`` and the platform
offers it to another one. ``Handoff`` decides what becomes of an inbound call nobody in
this client can take (the buffer is full, every handler is busy, the client drains or
closes): with ``inbound_overflow="pass"`` (the default) it is passed, with ``"busy"`` it
is ended ``busy`` (the caller hears busy). ``drain`` lets a worker leave without losing a
call: it stops receiving (``signalwire.unreceive``), passes what waited in the buffer, lets
the running handlers and live calls finish within its timeout, then hangs up what is left.

Invariants:

* A call handed on was never given to user code: its ``Call`` is finished at once, so it
  is not in ``calls`` and no exit hang-up reaches it; the core forgets it when the pass is
  accepted (``CallLost`` with ``passed``), without a hang-up.
* A pass the server refuses or does not answer ends the call ``busy`` (a cleanup hang-up):
  no call is left ringing here. A pass counts in ``passing`` from the moment it is decided
  until its outcome is known; ``settled()`` waits for that (its callers bound the wait).
* Every wait in ``drain`` is bounded: the whole of it by ``timeout``, the final hang-ups
  by ``cleanup_timeout``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Protocol

import anyio

from relay_proto import CallLost, ClientConnection, LocalProtocolError

from ._calls import Call
from ._errors import CallGoneError, ConnectionLostError, RelayError
from ._inbound import Inbound
from ._options import Limits, Overflow, Timeouts

__all__ = ["Handoff", "HandoffSession", "lost_error"]

logger = logging.getLogger("relay_anyio")

JSONObject = dict[str, Any]
Request = Callable[[Callable[[ClientConnection], str]], Awaitable[JSONObject]]


class HandoffSession(Protocol):
    """What ``Handoff`` needs of the session."""

    @property
    def core(self) -> ClientConnection: ...

    @property
    def calls(self) -> list[Call]: ...

    @property
    def inbound(self) -> Inbound[Call]: ...

    def send(self, start: Callable[[ClientConnection], object]) -> None: ...

    async def command(self, start: Callable[[ClientConnection], str]) -> JSONObject: ...


def _unsubscribe(contexts: Sequence[str], core: ClientConnection) -> str:
    request_id = core.unsubscribe(contexts)
    assert request_id is not None  # contexts is not empty
    return request_id


def lost_error(event: CallLost) -> RelayError:
    """What a call the core no longer tracks is finished with."""
    if event.passed:
        return CallGoneError("the call was passed to another consumer", code=410)
    if event.gone:
        return CallGoneError("the call no longer exists", code=410)
    return ConnectionLostError("the session was lost with the call")


class Handoff:
    """One client's overflow policy and drain (see the module docstring)."""

    def __init__(
        self,
        session: HandoffSession,
        request: Request,
        hang_up: Callable[[Call], Coroutine[Any, Any, None]],
        limits: Limits,
        timeouts: Timeouts,
    ) -> None:
        self._session = session
        self._request = request  # a request that waits for its reply, even while closing
        self._hang_up = hang_up  # an exit hang-up: ends the call and waits for its end
        self.overflow: Overflow = limits.inbound_overflow
        self._cleanup_timeout = timeouts.cleanup
        self.drain_on_exit = timeouts.drain_on_exit
        self.draining = False
        self.passing = 0
        self._settled: anyio.Event | None = None

    def closed(self, closing: bool) -> str | None:
        """Why no inbound call is taken now, or None."""
        if closing:
            return "the client is closing"
        return "the client is draining" if self.draining else None

    # ------------------------------------------------------------------ overflow

    def refuse(self, call: Call, why: str) -> None:
        """Hand on an inbound call nobody here can take: pass it, or end it ``busy``."""
        call.finish(CallGoneError(f"the call was handed on: {why}", code=410))
        if self.overflow == "pass":
            self.passing += 1
            if self._session.inbound.spawn("passing a call", lambda: self._pass(call, why)):
                return
            self._passed()
        logger.warning("inbound call %s refused (busy): %s", call.call_id, why)
        self._end_busy(call)

    async def _pass(self, call: Call, why: str) -> None:
        try:
            if self._session.core.get_call(call.call_id) is None:
                return  # it ended meanwhile: nothing to hand on
            await self._request(lambda core: core.pass_call(call.call_id))
            logger.info("inbound call %s passed to another consumer: %s", call.call_id, why)
        except (RelayError, LocalProtocolError) as exc:
            if self._session.core.get_call(call.call_id) is not None:  # not gone meanwhile
                logger.warning("inbound call %s not passed (%s); ending it busy", call.call_id, exc)
                self._end_busy(call)
        finally:
            self._passed()

    def _end_busy(self, call: Call) -> None:
        self._session.send(lambda core: core.end(call.call_id, "busy", cleanup=True))

    def _passed(self) -> None:
        self.passing -= 1
        settled = self._settled
        if not self.passing and settled is not None:
            self._settled = None
            settled.set()

    async def settled(self) -> None:
        """Return once every pass decided so far has its outcome."""
        while self.passing:
            if self._settled is None:
                self._settled = anyio.Event()
            await self._settled.wait()

    # ------------------------------------------------------------------ drain

    async def drain(self, timeout: float, contexts: Sequence[str]) -> None:  # noqa: ASYNC109
        """Stop taking inbound calls, let what runs finish within ``timeout``, hang up the
        rest (see the module docstring)."""
        session = self._session
        self.draining = True
        with anyio.move_on_after(timeout):
            if contexts:
                try:
                    await session.command(functools.partial(_unsubscribe, contexts))
                except RelayError as exc:  # the passes below still hand calls on
                    logger.warning("unsubscribing while draining failed: %s", exc)
            for call in session.inbound.take_waiting():
                self.refuse(call, "the client is draining")
            await session.inbound.wait_idle()
            await self.settled()
            while live := session.calls:
                await live[0].wait_for_ended()
        left = session.calls
        if left:
            logger.warning("drain: %d calls still live after %g s; hanging up", len(left), timeout)
            with anyio.move_on_after(self._cleanup_timeout):
                async with anyio.create_task_group() as tg:
                    for call in left:
                        tg.start_soon(self._hang_up, call)

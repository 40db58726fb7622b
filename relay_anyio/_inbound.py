"""Where inbound calls go: an ``on_call`` handler task, or the ``inbound_calls()`` buffer.

Invariants: at most ``max_handlers`` handler tasks run at once and at most
``inbound_buffer`` calls wait for the iterator; ``offer`` never blocks and never raises: it
says why a call could not be taken, and the session refuses that call (``busy``) rather
than leave it ringing. Handler tasks run in the client's task group and end with it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._calls import Call
from ._waiters import InboundCalls

__all__ = ["Handler", "Inbound"]

logger = logging.getLogger("relay_anyio")

Handler = Callable[[Call], Awaitable[None]]


class Inbound:
    """One client's inbound calls, from ``open`` to ``close``."""

    def __init__(self, *, buffer: int, max_handlers: int) -> None:
        #: The ``on_call`` handler; None: calls go to the ``inbound_calls()`` buffer.
        self.handler: Handler | None = None
        self._buffer = buffer
        self._max_handlers = max_handlers
        self._running = 0
        self._tg: anyio.abc.TaskGroup | None = None
        # Created by open() and closed by close() (an unclosed stream warns).
        self._send: MemoryObjectSendStream[Call] | None = None
        self._recv: MemoryObjectReceiveStream[Call] | None = None

    def open(self, tg: anyio.abc.TaskGroup) -> None:
        """Start taking calls; handlers run in ``tg``."""
        self._tg = tg
        self._send, self._recv = anyio.create_memory_object_stream[Call](self._buffer)

    def end(self) -> None:
        """No more calls: the iteration ends once the buffer is empty."""
        if self._send is not None:
            self._send.close()

    def close(self) -> None:
        for stream in (self._send, self._recv):
            if stream is not None:
                stream.close()

    def calls(self) -> AsyncIterator[Call]:
        if self._recv is None:
            raise RuntimeError("use the client inside 'async with client:'")
        return InboundCalls(self._recv)

    def offer(self, call: Call) -> str | None:
        """Hand ``call`` to a handler or the buffer; None, or why nobody could take it."""
        handler, tg = self.handler, self._tg
        if handler is not None and tg is not None:
            if self._running >= self._max_handlers:
                return f"{self._running} handlers are running (max_handlers)"
            self._running += 1
            tg.start_soon(self._run, handler, call)
            return None
        try:
            if self._send is None:
                raise anyio.ClosedResourceError
            self._send.send_nowait(call)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            return "nobody is taking calls"
        return None

    async def _run(self, handler: Handler, call: Call) -> None:
        try:
            await handler(call)
        except Exception:
            logger.exception("inbound call handler raised for call %s", call.call_id)
        finally:
            self._running -= 1

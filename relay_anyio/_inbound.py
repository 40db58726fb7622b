"""Where inbound items go: a handler task (``on_call`` / ``on_message``), or a buffer read
by an iterator (``inbound_calls()`` / ``inbound_messages()``). One ``Inbound`` per kind.

Invariants: at most ``max_handlers`` handler tasks run at once and at most
``inbound_buffer`` items wait for the iterator; ``offer`` never blocks and never raises: it
says why an item could not be taken, and the session hands that call on (``_handoff``:
passed, or refused ``busy``) rather than leave it ringing, or drops that message with a
warning. Handler tasks (and the callbacks given to ``spawn``) run in the client's task
group and end with it. ``take_waiting`` ends the buffer and gives back what waited in it
(a drain hands those calls on); ``wait_idle`` returns once no handler runs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Generic, TypeVar

import anyio
import anyio.abc
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._waiters import InboundItems

__all__ = ["Inbound"]

logger = logging.getLogger("relay_anyio")

T = TypeVar("T")


class Inbound(Generic[T]):
    """One client's inbound items of one kind, from ``open`` to ``close``."""

    def __init__(self, *, buffer: int, max_handlers: int, kind: str = "call") -> None:
        #: The handler; None: items go to the iterator's buffer.
        self.handler: Callable[[T], Awaitable[None]] | None = None
        self._kind = kind
        self._buffer = buffer
        self._max_handlers = max_handlers
        self._running = 0
        self._idle: anyio.Event | None = None  # set when the last running handler ends
        self._tg: anyio.abc.TaskGroup | None = None
        # Created by open() and closed by close() (an unclosed stream warns).
        self._send: MemoryObjectSendStream[T] | None = None
        self._recv: MemoryObjectReceiveStream[T] | None = None

    def open(self, tg: anyio.abc.TaskGroup) -> None:
        """Start taking calls; handlers run in ``tg``."""
        self._tg = tg
        self._send, self._recv = anyio.create_memory_object_stream[T](self._buffer)

    def end(self) -> None:
        """No more calls: the iteration ends once the buffer is empty."""
        if self._send is not None:
            self._send.close()

    def close(self) -> None:
        for stream in (self._send, self._recv):
            if stream is not None:
                stream.close()

    def take_waiting(self) -> list[T]:
        """No more items: end the iteration and return the items still in the buffer."""
        self.end()
        taken: list[T] = []
        while self._recv is not None:
            try:
                taken.append(self._recv.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
        return taken

    async def wait_idle(self) -> None:
        """Return once no handler is running."""
        while self._running:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()

    def items(self) -> AsyncIterator[T]:
        """The iterator over the buffer."""
        if self._recv is None:
            raise RuntimeError("use the client inside 'async with client:'")
        return InboundItems(self._recv)

    def offer(self, item: T) -> str | None:
        """Hand ``item`` to a handler or the buffer; None, or why nobody could take it."""
        handler, tg = self.handler, self._tg
        if handler is not None and tg is not None:
            if self._running >= self._max_handlers:
                return f"{self._running} handlers are running (max_handlers)"
            self._running += 1
            tg.start_soon(self._run, handler, item)
            return None
        try:
            if self._send is None:
                raise anyio.ClosedResourceError
            self._send.send_nowait(item)
        except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
            return f"nobody is taking {self._kind}s"
        return None

    def spawn(self, what: str, fn: Callable[[], Awaitable[Any]]) -> bool:
        """Run ``fn()`` in the client's task group (a user callback): an error it raises is
        logged, never raised into the client. Dropped with a warning once closed (False)."""
        if self._tg is None or self._send is None:
            logger.warning("%s not run: the client is not open", what)
            return False
        self._tg.start_soon(self._guarded, what, fn)
        return True

    async def _guarded(self, what: str, fn: Callable[[], Awaitable[Any]]) -> None:
        try:
            await fn()
        except Exception:
            logger.exception("%s raised", what)

    async def _run(self, handler: Callable[[T], Awaitable[None]], item: T) -> None:
        try:
            await handler(item)
        except Exception:
            logger.exception("inbound %s handler raised for %r", self._kind, item)
        finally:
            self._running -= 1
            idle = self._idle
            if not self._running and idle is not None:
                self._idle = None
                idle.set()

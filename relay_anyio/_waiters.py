"""Small waiting primitives of the client: one-shot result slots, the inbound iterators
(calls, messages), and the deadlines that bound waits."""

from __future__ import annotations

import asyncio
import heapq
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream

T = TypeVar("T")


class Flag(Protocol):
    """What the client needs of an event: ``anyio.Event`` or the loop's own (``event_factory``)."""

    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> object: ...


async def wait_flag(flag: Flag) -> None:
    """``flag.wait()`` with ``anyio.Event``'s rule: a checkpoint even if it is set already
    (an asyncio event would return without one)."""
    if flag.is_set():
        await anyio.lowlevel.checkpoint()
    else:
        await flag.wait()


class Slot(Generic[T]):
    """A one-shot result: set once, awaited by one waiter. ``event``: a fresh, unset event
    (from ``event_factory``), or None to make one."""

    __slots__ = ("_event", "value")

    def __init__(self, event: Flag | None = None) -> None:
        self._event = anyio.Event() if event is None else event
        self.value: T | BaseException | None = None

    def set(self, value: T | BaseException) -> None:
        if not self._event.is_set():
            self.value = value
            self._event.set()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> T:
        event = self._event
        if event.is_set():  # ``wait_flag``, inlined (one call less per request)
            await anyio.lowlevel.checkpoint()
        else:
            await event.wait()
        value = self.value
        if isinstance(value, BaseException):
            raise value
        return value  # type: ignore[return-value]


def event_factory() -> Callable[[], Flag]:
    """Makes the running event loop's own events (call it inside the loop).

    Reason: an ``anyio.Event`` wraps the loop's own event, so each of its calls is two, and
    ``anyio.Event()`` looks the running backend up; the client makes, sets and waits for a
    few events per dial. Waits that may find the event set go through ``wait_flag``.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # not asyncio: trio, the one other backend anyio runs on
        import trio  # an optional dependency, present when trio runs

        return trio.Event
    return asyncio.Event


def loop_clock() -> Callable[[], float]:
    """``anyio.current_time`` of the running loop, without its per-call backend look-up
    (call it inside the loop). Reason: the client reads the clock for every command."""
    try:
        return asyncio.get_running_loop().time
    except RuntimeError:
        import trio

        return trio.current_time


def cancel_check() -> Callable[[], Awaitable[None]]:
    """``anyio.lowlevel.checkpoint_if_cancelled`` of the running loop's backend, without
    its per-call backend look-up (call it inside the loop; on asyncio, anyio >= 4.11 names
    its backend, an older one gets the look-up)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        import trio

        return trio.lowlevel.checkpoint_if_cancelled  # what anyio's trio backend calls
    current_token: Callable[[], Any] | None = getattr(anyio.lowlevel, "current_token", None)
    if current_token is None:  # pragma: no cover - anyio < 4.11
        return anyio.lowlevel.checkpoint_if_cancelled
    check: Callable[[], Awaitable[None]] = current_token().backend_class.checkpoint_if_cancelled
    return check


class InboundItems(Generic[T]):
    """``RelayClient.inbound_calls()`` / ``inbound_messages()``: an inbound stream, ending
    when the client closes."""

    __slots__ = ("_receive",)

    def __init__(self, receive: MemoryObjectReceiveStream[T]) -> None:
        self._receive = receive

    def __aiter__(self) -> InboundItems[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None


class Deadlines:
    """Bounds on waits, kept by the session's timer task rather than a cancel scope per wait
    (reason: a scope costs several microseconds to enter and leave, and every request and
    hang-up waits once or twice).

    Each entry is ``(when, seq, done, expire)``: at ``when`` the timer task calls ``expire()``
    unless ``done()`` says the wait is already over. Entries whose wait ended early stay until
    their time or until they outnumber the live ones, when the heap is compacted.
    """

    __slots__ = ("_heap", "_limit", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], bool], Callable[[], None]]] = []
        self._seq = 0
        self._limit = _COMPACT_AT  # compact when the heap reaches this (then: twice the rest)

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, when: float, done: Callable[[], bool], expire: Callable[[], None]) -> bool:
        """Schedule ``expire``; returns whether ``when`` is now the earliest deadline."""
        heap = self._heap
        if len(heap) >= self._limit:
            self._heap = heap = [entry for entry in heap if not entry[2]()]
            heapq.heapify(heap)
            self._limit = max(_COMPACT_AT, 2 * len(heap))
        self._seq += 1
        heapq.heappush(heap, (when, self._seq, done, expire))
        return heap[0][1] == self._seq

    def next_deadline(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def expire_due(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, done, expire = heapq.heappop(heap)
            if not done():
                expire()


_COMPACT_AT = 256


class Runner(Protocol):
    """Where a user's async callback runs (the client's task group)."""

    def spawn(self, what: str, fn: Callable[[], Awaitable[Any]]) -> None: ...


def call_back(runner: Runner, what: str, callback: Callable[[T], object], value: T) -> None:
    """Run a user's ``on_completed`` with ``value``: a plain function at once, a coroutine
    function as a task on ``runner``; what it raises is logged, never raised here."""
    try:
        outcome = callback(value)
    except Exception:
        logging.getLogger("relay_anyio").exception("%s raised", what)
        return
    if inspect.isawaitable(outcome):
        awaitable = outcome

        async def run() -> None:
            await awaitable

        runner.spawn(what, run)

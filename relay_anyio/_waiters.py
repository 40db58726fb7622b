"""Small waiting primitives of the client: one-shot result slots, the inbound iterator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Generic, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

if TYPE_CHECKING:
    from ._calls import Call

T = TypeVar("T")


class Slot(Generic[T]):
    """A one-shot result: set once, awaited by one waiter."""

    __slots__ = ("_event", "value")

    def __init__(self) -> None:
        self._event = anyio.Event()
        self.value: T | BaseException | None = None

    def set(self, value: T | BaseException) -> None:
        if not self._event.is_set():
            self.value = value
            self._event.set()

    @property
    def is_set(self) -> bool:
        return self._event.is_set()

    async def wait(self) -> T:
        await self._event.wait()
        value = self.value
        if isinstance(value, BaseException):
            raise value
        return value  # type: ignore[return-value]


class InboundCalls:
    """``RelayClient.inbound_calls()``: the inbound stream, ending when the client closes."""

    __slots__ = ("_receive",)

    def __init__(self, receive: MemoryObjectReceiveStream[Call]) -> None:
        self._receive = receive

    def __aiter__(self) -> InboundCalls:
        return self

    async def __anext__(self) -> Call:
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

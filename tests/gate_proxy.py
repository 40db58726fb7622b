"""``gate_proxy``: a loopback TCP proxy that can hold what the server sends.

While ``hold`` is set, the first bytes from the server set ``spoke`` and wait (with all
that follows) until ``release()``; what the client sends always passes. A test uses it to
act between the server handling a request and the client seeing the reply (cancel a start
the server has accepted, say) without sleeping.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import anyio
import anyio.abc


class GateProxy:
    """A TCP proxy that can hold what the server sends (``hold``) until ``release()``;
    ``spoke`` is set when the server sent something while held."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.hold = False
        self.spoke = anyio.Event()
        self._released = anyio.Event()

    def release(self) -> None:
        self.hold = False
        self._released.set()

    async def _pump(
        self, source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream, held: bool
    ) -> None:
        with contextlib.suppress(anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            while True:
                data = await source.receive()
                if held and self.hold:
                    self.spoke.set()
                    await self._released.wait()
                await sink.send(data)
        await anyio.aclose_forcefully(sink)

    async def _handle(self, client: anyio.abc.SocketStream) -> None:
        server = await anyio.connect_tcp("127.0.0.1", self.target_port)
        async with client, server, anyio.create_task_group() as tg:
            tg.start_soon(self._pump, client, server, False)
            tg.start_soon(self._pump, server, client, True)


@contextlib.asynccontextmanager
async def gate_proxy(target_port: int) -> AsyncIterator[GateProxy]:
    proxy = GateProxy(target_port)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    proxy.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, proxy._handle)
        try:
            yield proxy
        finally:
            proxy.release()
            tg.cancel_scope.cancel()

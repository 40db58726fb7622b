"""An in-process TCP fault proxy on loopback, for the chaos soak.

Every accepted connection is forwarded to ``target_port``. Faults are drawn from a seeded
``random.Random`` per connection and per moment (after a random number of forwarded bytes):

* ``reset``: both sockets closed with ``SO_LINGER`` 0 (an RST, no close handshake);
* ``half-open``: one direction silently drops everything from then on, the sockets stay
  open (a peer that vanished without a FIN): only the client's liveness checks notice;
* ``stall``: one direction stops for a moment, then forwards what it held;
* chunk splitting (per connection): data is forwarded in random 1..64-byte pieces.

``calm()`` stops new faults (blackholed connections are reset) so that invariants can be
checked on a quiet network; ``storm()`` lets them come again.
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
from collections import Counter
from collections.abc import AsyncIterator

import anyio
import anyio.abc

BROKEN = (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)


def reset(stream: anyio.abc.SocketStream) -> None:
    """Make the next close send an RST (SO_LINGER 0)."""
    raw = stream.extra(anyio.abc.SocketAttribute.raw_socket)
    with contextlib.suppress(OSError):
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class Link:
    """One proxied connection and its fault schedule."""

    def __init__(self, proxy: FaultProxy, scope: anyio.CancelScope) -> None:
        self.proxy = proxy
        self.scope = scope
        self.split = proxy.rng.random() < 0.3
        self.blackholed = [False, False]
        self.budget = self._next_budget()

    def _next_budget(self) -> int:
        return self.proxy.rng.randint(5_000, 120_000)

    def fault(self, size: int) -> str | None:
        """The fault to apply before forwarding ``size`` more bytes, if any."""
        if self.proxy.calm_now:
            return None
        self.budget -= size
        if self.budget > 0:
            return None
        self.budget = self._next_budget()
        return self.proxy.rng.choices(["reset", "half-open", "stall"], [35, 15, 50])[0]


class FaultProxy:
    def __init__(self, target_port: int, rng: random.Random) -> None:
        self.target_port = target_port
        self.rng = rng
        self.port = 0
        self.faults: Counter[str] = Counter()
        self.calm_now = False
        self._links: list[Link] = []

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def calm(self) -> None:
        """No new faults; connections that were blackholed are reset (they are dead)."""
        self.calm_now = True
        for link in self._links:
            if any(link.blackholed):
                link.scope.cancel()

    def storm(self) -> None:
        self.calm_now = False

    async def _pump(
        self, link: Link, index: int, src: anyio.abc.SocketStream, dst: anyio.abc.SocketStream
    ) -> None:
        rng = self.rng
        with contextlib.suppress(*BROKEN):
            while True:
                data = await src.receive()
                fault = link.fault(len(data))
                if fault is not None:
                    self.faults[fault] += 1
                if fault == "reset":
                    reset(src)
                    reset(dst)
                    break
                if fault == "half-open":
                    link.blackholed[index] = True
                elif fault == "stall":
                    await anyio.sleep(rng.uniform(0.05, 0.5))
                if link.blackholed[index]:
                    continue
                if link.split and len(data) > 1:
                    while data:
                        cut = rng.randint(1, 64)
                        await dst.send(data[:cut])
                        data = data[cut:]
                else:
                    await dst.send(data)
        link.scope.cancel()

    async def handle(self, client: anyio.abc.SocketStream) -> None:
        try:
            server = await anyio.connect_tcp("127.0.0.1", self.target_port)
        except OSError:
            await anyio.aclose_forcefully(client)
            return
        async with client, server, anyio.create_task_group() as tg:
            link = Link(self, tg.cancel_scope)
            self._links.append(link)
            try:
                tg.start_soon(self._pump, link, 0, client, server)
                tg.start_soon(self._pump, link, 1, server, client)
                await anyio.sleep_forever()
            finally:
                self._links.remove(link)


@contextlib.asynccontextmanager
async def fault_proxy(target_port: int, rng: random.Random) -> AsyncIterator[FaultProxy]:
    proxy = FaultProxy(target_port, rng)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    proxy.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, proxy.handle)
        try:
            yield proxy
        finally:
            tg.cancel_scope.cancel()

"""A scripted, possibly hostile RELAY server on loopback, on raw sockets and wsproto.

``hostile_server(scripts)`` listens on 127.0.0.1 and hands the N-th accepted socket to
``scripts[N]`` (the last script serves every later socket). A script gets a ``Peer``: the
raw byte stream plus a server-side wsproto connection. ``Peer.accept()`` does the HTTP
upgrade; ``session()`` answers ``signalwire.connect``; ``serve()`` then behaves like a
polite server (answers every request with an empty result). Anything else (raw bytes,
lying frame headers, floods) a script writes itself with ``raw()`` and ``frame()``.

Used by ``test_hostile_server.py`` and ``test_reliability_defects.py``: only public client
APIs are exercised; nothing here imports a private module of the library.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import ssl
import struct
import subprocess
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
from anyio.streams.tls import TLSStream
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    Request,
    TextMessage,
)

from relay_anyio import RelayClient

JSONObject = dict[str, Any]
TOKEN = "s3cr3t-t0ken-value"

#: Upper bound for any single wait in these tests.
BOUND = 10.0


class PeerClosed(Exception):
    """The client closed the socket (or sent a close frame)."""


def frame(opcode: int, payload: bytes, *, fin: bool = True, length: int | None = None) -> bytes:
    """One unmasked (server) frame; ``length`` lies about the payload size in the header."""
    size = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | opcode])
    if size < 126:
        head += bytes([size])
    elif size < 1 << 16:
        head += bytes([126]) + struct.pack("!H", size)
    else:
        head += bytes([127]) + struct.pack("!Q", size)
    return head + payload


def fragmented(text: str, pieces: int) -> bytes:
    """``text`` as one text message cut into ``pieces`` frames (1+ byte each)."""
    data = text.encode()
    step = max(1, len(data) // pieces)
    chunks = [data[i : i + step] for i in range(0, len(data), step)]
    out = [frame(0x1, chunks[0], fin=len(chunks) == 1)]
    out += [frame(0x0, chunk, fin=False) for chunk in chunks[1:-1]]
    if len(chunks) > 1:
        out.append(frame(0x0, chunks[-1]))
    return b"".join(out)


def deep(depth: int) -> str:
    """A JSON array nested ``depth`` deep, as text."""
    return "[" * depth + "]" * depth


def event(event_type: str, params_json: str, event_id: str = "ev-1") -> str:
    return (
        f'{{"jsonrpc":"2.0","id":"{event_id}","method":"signalwire.event","params":'
        f'{{"event_type":"{event_type}","event_channel":"c","timestamp":0.0,'
        f'"project_id":"p","space_id":"s","params":{params_json}}}}}'
    )


def ping(request_id: str = "srv-ping", params: str = "{}") -> str:
    return f'{{"jsonrpc":"2.0","id":"{request_id}","method":"signalwire.ping","params":{params}}}'


class Peer:
    """One accepted socket, seen from the server."""

    def __init__(self, stream: anyio.abc.ByteStream, index: int) -> None:
        self.stream = stream
        self.index = index
        self.ws = WSConnection(ConnectionType.SERVER)
        self.received: list[JSONObject] = []
        self._texts: deque[str] = deque()
        self._parts: list[str] = []

    async def raw(self, data: bytes) -> None:
        await self.stream.send(data)

    async def http_request(self) -> bytes:
        """Read the client's HTTP upgrade request without answering it (bad handshakes)."""
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                data += await self.stream.receive()
            except (anyio.EndOfStream, anyio.BrokenResourceError) as exc:
                raise PeerClosed from exc
        return data

    async def accept(self) -> Request:
        while True:
            for ev in self.ws.events():
                if isinstance(ev, Request):
                    await self.raw(self.ws.send(AcceptConnection()))
                    return ev
            await self._read()

    async def send(self, message: JSONObject | str) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        await self.raw(self.ws.send(Message(data=text)))

    async def _read(self) -> None:
        try:
            data = await self.stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, anyio.ClosedResourceError):
            raise PeerClosed from None
        self.ws.receive_data(data)

    async def recv(self) -> JSONObject:
        """The next JSON message from the client (WebSocket pings answered on the way)."""
        while not self._texts:
            await self._read()
            for ev in self.ws.events():
                if isinstance(ev, TextMessage):
                    self._parts.append(ev.data)
                    if ev.message_finished:
                        self._texts.append("".join(self._parts))
                        self._parts.clear()
                elif isinstance(ev, Ping):
                    await self.raw(self.ws.send(ev.response()))
                elif isinstance(ev, CloseConnection):
                    raise PeerClosed
        message: JSONObject = json.loads(self._texts.popleft())
        self.received.append(message)
        return message

    async def request(self, method: str) -> JSONObject:
        """Wait for the client's next request named ``method`` (others are answered)."""
        while True:
            message = await self.recv()
            if message.get("method") == method:
                return message
            await self.answer(message)

    async def answer(self, message: JSONObject, result: JSONObject | None = None) -> None:
        if "method" in message and "id" in message:
            await self.send({"jsonrpc": "2.0", "id": message["id"], "result": result or {}})

    async def session(self, *, restored: bool = False) -> JSONObject:
        """Upgrade (if not done) and answer ``signalwire.connect``; return its request."""
        if self.ws.state.name == "CONNECTING":
            await self.accept()
        connect = await self.request("signalwire.connect")
        result: JSONObject = {
            "identity": "p@space",
            "protocol": "signalwire_hostile",
            "authorization": {"project": "p", "scopes": ["calling"], "signature": "sig"},
        }
        if "protocol" in connect["params"]:
            result["session_restored"] = restored
        await self.send({"jsonrpc": "2.0", "id": connect["id"], "result": result})
        return connect

    async def serve(self) -> None:
        """Be a polite server until the client goes away."""
        with contextlib.suppress(PeerClosed):
            while True:
                await self.answer(await self.recv())

    async def ping_client(self, request_id: str = "srv-ping", params: str = "{}") -> JSONObject:
        """Send ``signalwire.ping`` and wait for its reply: the client handled all before."""
        await self.send(ping(request_id, params))
        return await self.reply_to(request_id)

    async def reply_to(self, request_id: str) -> JSONObject:
        """Read (answering the client's requests) until the reply to ``request_id``."""
        while True:
            message = await self.recv()
            if message.get("id") == request_id and "method" not in message:
                return message
            await self.answer(message)


Script = Callable[[Peer], Awaitable[None]]


async def polite(peer: Peer) -> None:
    await peer.session()
    await peer.serve()


class HostileServer:
    def __init__(self, scripts: Sequence[Script], scheme: str) -> None:
        self.scripts = list(scripts) or [polite]
        self.scheme = scheme
        self.port = 0
        self.peers: list[Peer] = []
        self.errors: list[BaseException] = []

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    async def handle(self, stream: anyio.abc.ByteStream) -> None:
        peer = Peer(stream, len(self.peers))
        self.peers.append(peer)
        script = self.scripts[min(peer.index, len(self.scripts) - 1)]
        try:
            await script(peer)
        except (PeerClosed, anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        except Exception as exc:  # a broken script must fail the test, not hang it
            self.errors.append(exc)
        finally:
            await anyio.aclose_forcefully(stream)


@contextlib.asynccontextmanager
async def hostile_server(
    *scripts: Script, tls: ssl.SSLContext | None = None
) -> AsyncIterator[HostileServer]:
    server = HostileServer(scripts, "wss" if tls else "ws")
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    server.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))

    async def handle(stream: anyio.abc.SocketStream) -> None:
        if tls is None:
            await server.handle(stream)
            return
        try:
            wrapped = await TLSStream.wrap(
                stream, server_side=True, ssl_context=tls, standard_compatible=False
            )
        except (ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream, OSError):
            await anyio.aclose_forcefully(stream)
            return
        await server.handle(wrapped)

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()
    assert not server.errors, server.errors


def certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 made with the openssl CLI (skip without it)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not available")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


def client_for(url: str, **options: Any) -> RelayClient:
    """A ``RelayClient`` for a hostile server: one connect attempt, short clean-up."""
    defaults: dict[str, Any] = {
        "project": "p",
        "token": TOKEN,
        "connect_attempts": 1,
        "auth_attempts": 1,
        "connect_timeout": 2.0,
        "backoff_initial": 0.01,
        "backoff_max": 0.05,
        "cleanup_timeout": 0.5,
        "close_timeout": 0.5,
    }
    return RelayClient(url=url, **{**defaults, **options})

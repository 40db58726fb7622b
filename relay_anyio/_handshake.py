"""Opening a WebSocket, both roles: the HTTP upgrade (wsproto speaks the HTTP), bounded in
time, its errors translated, the upgraded stream handed to a ``_websocket.WebSocket``.

``connect_websocket`` (client) and ``accept_websocket`` (server, for the simulator and tests)
are the entry points; ``client_upgrade`` / ``server_upgrade`` do the HTTP part only.

Invariants (the reasons behind the code below):

* wsproto is fed the HTTP head only (up to the blank line, found as h11 finds it); whatever
  arrived after it in the same read is WebSocket frames, returned as ``Upgraded.received``
  for the framer to take before the first read from the stream. wsproto's connection is
  dropped once the upgrade is done: it frames nothing.
* On any failure (an exception or a cancellation) the stream is closed forcefully before the
  exception propagates: an upgrade either returns an open stream or leaves none behind.
* The upgrades themselves translate and time nothing: third-party exceptions reach
  ``connect_websocket`` / ``accept_websocket`` unchanged, which bound the whole upgrade and
  translate them (``_translate.translate_error``, the one place that does). The only error
  the upgrades raise is the project's ``ConnectionLostError`` for an HTTP answer other than
  101.
* A server that gets a request which is no valid upgrade answers it (400, or 426 for a wrong
  version) on a best-effort basis, then raises wsproto's ``RemoteProtocolError``.
* TLS runs with ``tls_standard_compatible=False``: the WebSocket close handshake ends the
  session, so no close_notify exchange can stall a close.
"""

from __future__ import annotations

import contextlib
import logging
import re
import ssl
from dataclasses import dataclass

import anyio
import anyio.abc
import wsproto.utilities
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, RejectConnection, Request

from ._errors import ConfigurationError, ConnectionLostError
from ._frames import DEFAULT_MAX_MESSAGE_SIZE
from ._redact import Redactor
from ._translate import translate_error
from ._url import ParsedURL
from ._websocket import Framer, WebSocket

__all__ = [
    "DEFAULT_WRITE_TIMEOUT",
    "Upgraded",
    "accept_websocket",
    "client_upgrade",
    "connect_websocket",
    "feed_head",
    "server_upgrade",
]

DEFAULT_WRITE_TIMEOUT = 10.0

_log = logging.getLogger("relay_anyio.transport")

#: Bytes asked of the stream per read while the head is incomplete (frames may follow it).
_READ_SIZE = 65536
#: The end of an HTTP head, found exactly as h11 finds it.
_END_OF_HEAD = re.compile(b"\n\r?\n")


@dataclass(frozen=True, slots=True, kw_only=True)
class Upgraded:
    """An upgraded stream: the open WebSocket's bytes, before any framing."""

    stream: anyio.abc.ByteStream
    #: Bytes that followed the HTTP head in its last read: WebSocket frames.
    received: bytes
    #: The request target (``"/"`` for a client, whatever the client asked for a server).
    target: str


def feed_head(ws: WSConnection, tail: bytes, data: bytes) -> tuple[bytes, bytes | None]:
    """Feed ``ws`` the part of ``data`` that belongs to the HTTP head.

    ``tail`` is the end of what was fed before (a blank line may be split across reads).
    Returns the new ``tail`` and, once the head is complete, the bytes after it (WebSocket
    frames, which wsproto never sees); ``None`` while the head is incomplete.
    """
    window = tail + data
    match = _END_OF_HEAD.search(window)
    if match is None:
        ws.receive_data(data)
        return window[-2:], None
    cut = match.end() - len(tail)  # > 0: no match lay within what was fed before
    ws.receive_data(data[:cut])
    return b"", data[cut:]


async def client_upgrade(url: ParsedURL, ssl_context: ssl.SSLContext | None) -> Upgraded:
    """Connect (TLS when ``ssl_context`` is given, checked against ``url.host``) and upgrade."""
    stream: anyio.abc.ByteStream
    if ssl_context is None:
        stream = await anyio.connect_tcp(url.host, url.port)
    else:
        stream = await anyio.connect_tcp(
            url.host,
            url.port,
            ssl_context=ssl_context,
            tls_hostname=url.host,
            tls_standard_compatible=False,
        )
    try:
        ws = WSConnection(ConnectionType.CLIENT)
        await stream.send(ws.send(Request(host=url.host_header, target=url.path)))
        tail, data = b"", b""
        while True:
            tail, rest = feed_head(ws, tail, data or await stream.receive(_READ_SIZE))
            data = rest or b""
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    _log.debug("connected to %s", url)
                    return Upgraded(stream=stream, received=data, target=url.path)
                if isinstance(event, RejectConnection):
                    raise ConnectionLostError(
                        f"connecting to {url}: the server answered the WebSocket upgrade "
                        f"with HTTP {event.status_code}"
                    )
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


async def server_upgrade(stream: anyio.abc.ByteStream) -> Upgraded:
    """Read the client's upgrade request from an accepted ``stream`` and accept it."""
    ws = WSConnection(ConnectionType.SERVER)
    try:
        tail, data = b"", b""
        while True:
            try:
                tail, rest = feed_head(ws, tail, data or await stream.receive(_READ_SIZE))
            except wsproto.utilities.RemoteProtocolError as exc:
                await _reject(stream, ws, exc)
                raise
            data = rest or b""
            for event in ws.events():
                if isinstance(event, Request):
                    await stream.send(ws.send(AcceptConnection()))
                    return Upgraded(stream=stream, received=data, target=event.target)
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise


async def _reject(
    stream: anyio.abc.ByteStream, ws: WSConnection, exc: wsproto.utilities.RemoteProtocolError
) -> None:
    rejection = exc.event_hint
    if not isinstance(rejection, RejectConnection):
        rejection = RejectConnection(status_code=400)
    with contextlib.suppress(Exception):  # best effort: the caller reports the original error
        await stream.send(ws.send(rejection))


# ---------------------------------------------------------------------------- opening


async def connect_websocket(
    url: ParsedURL,
    *,
    ssl_context: ssl.SSLContext | None = None,
    connect_timeout: float = 10.0,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    write_timeout: float = DEFAULT_WRITE_TIMEOUT,
    redactor: Redactor | None = None,
) -> WebSocket:
    """Open a TCP (``ws``) or TLS (``wss``) connection and do the client handshake.

    TLS verifies the certificate against ``url.host`` (``ssl.create_default_context()``
    unless ``ssl_context`` is given). The whole of it is bounded by ``connect_timeout``.
    Raises ``ConnectionLostError`` (refused, DNS, TLS, timeout, HTTP status other than 101,
    bad handshake) and ``ConfigurationError`` (``ssl_context`` with ``ws://``, bad size).
    ``redactor`` masks the client's secrets in the frames it logs and the peer's close reason.
    """
    framer = Framer(client=True, max_message_size=max_message_size)  # checks the size
    if ssl_context is not None and not url.secure:
        raise ConfigurationError("ssl_context was given for a plain ws:// URL")
    if url.secure and ssl_context is None:
        ssl_context = ssl.create_default_context()
    upgraded: Upgraded | None = None
    with anyio.move_on_after(connect_timeout):
        try:
            upgraded = await client_upgrade(url, ssl_context)
        except Exception as exc:
            _raise_translated(exc, f"connecting to {url}", host=url.host)
            raise
    if upgraded is None:  # the deadline passed (the upgrade closed the stream)
        raise ConnectionLostError(f"timed out connecting to {url} after {connect_timeout:g}s")
    return _open(upgraded, framer, write_timeout, str(url), redactor)


async def accept_websocket(
    stream: anyio.abc.ByteStream,
    *,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    write_timeout: float = DEFAULT_WRITE_TIMEOUT,
    handshake_timeout: float = 10.0,
) -> WebSocket:
    """Server side of the handshake on an accepted stream (for the simulator and tests).

    A request that is not a WebSocket upgrade is answered with HTTP 400 (426 for a wrong
    version) and raises ``ConnectionLostError`` (``__cause__``: ``ProtocolViolationError``).
    On any failure the stream is closed.
    """
    framer = Framer(client=False, max_message_size=max_message_size)  # checks the size
    context = "accepting a websocket"
    try:
        with anyio.fail_after(handshake_timeout):
            upgraded = await server_upgrade(stream)
    except TimeoutError:
        raise ConnectionLostError(f"{context}: timed out waiting for the request") from None
    except Exception as exc:
        _raise_translated(exc, context)
        raise
    description = f"server {upgraded.target}"
    return _open(upgraded, framer, write_timeout, description)


def _open(
    upgraded: Upgraded,
    framer: Framer,
    write_timeout: float,
    description: str,
    redactor: Redactor | None = None,
) -> WebSocket:
    return WebSocket(
        upgraded.stream,
        framer,
        write_timeout=write_timeout,
        description=description,
        received=upgraded.received,
        redactor=redactor,
    )


def _raise_translated(exc: BaseException, context: str, *, host: str | None = None) -> None:
    """Raise the project's error for a failed handshake's ``exc``; return if there is none."""
    if not isinstance(exc, Exception):
        return
    err = translate_error(exc, context, established=False, host=host)
    if err is not None and err is not exc:
        raise err from (err.__cause__ or exc)

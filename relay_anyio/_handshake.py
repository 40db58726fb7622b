"""The HTTP upgrade that opens a WebSocket, both roles: wsproto speaks the HTTP.

``_transport`` calls ``client_upgrade`` / ``server_upgrade`` and wraps the result in a
``WebSocket``; this module knows nothing of open sockets, frames or option checking.

Invariants (the reasons behind the code below):

* wsproto is fed the HTTP head only (up to the blank line, found as h11 finds it); whatever
  arrived after it in the same read is WebSocket frames, returned as ``Upgraded.received``
  for the framer to take before the first read from the stream.
* On any failure (an exception or a cancellation) the stream is closed forcefully before the
  exception propagates: an upgrade either returns an open stream or leaves none behind.
* Nothing is translated and nothing is timed here: third-party exceptions reach the caller
  unchanged (``_transport.translate_error`` is the one place that translates them), and the
  caller bounds the whole upgrade. The only errors raised here are the project's own
  ``ConnectionLostError`` for an HTTP answer other than 101.
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

from ._errors import ConnectionLostError
from ._url import ParsedURL

__all__ = ["Upgraded", "client_upgrade", "server_upgrade"]

_log = logging.getLogger("relay_anyio.transport")

#: Bytes asked of the stream per read while the head is incomplete (frames may follow it).
_READ_SIZE = 65536
#: The end of an HTTP head, found exactly as h11 finds it.
_END_OF_HEAD = re.compile(b"\n\r?\n")


@dataclass(frozen=True, slots=True, kw_only=True)
class Upgraded:
    """An upgraded stream: the open WebSocket's bytes, before any framing."""

    stream: anyio.abc.ByteStream
    #: wsproto's connection, now OPEN (the ``"wsproto"`` framing keeps using it).
    connection: WSConnection
    #: Bytes that followed the HTTP head in its last read: WebSocket frames.
    received: bytes
    #: The request target (``"/"`` for a client, whatever the client asked for a server).
    target: str


def _feed_head(ws: WSConnection, tail: bytes, data: bytes) -> tuple[bytes, bytes | None]:
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
            tail, rest = _feed_head(ws, tail, data or await stream.receive(_READ_SIZE))
            data = rest or b""
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    _log.debug("connected to %s", url)
                    return Upgraded(stream=stream, connection=ws, received=data, target=url.path)
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
                tail, rest = _feed_head(ws, tail, data or await stream.receive(_READ_SIZE))
            except wsproto.utilities.RemoteProtocolError as exc:
                await _reject(stream, ws, exc)
                raise
            data = rest or b""
            for event in ws.events():
                if isinstance(event, Request):
                    await stream.send(ws.send(AcceptConnection()))
                    return Upgraded(
                        stream=stream, connection=ws, received=data, target=event.target
                    )
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

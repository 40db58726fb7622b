"""The one place where third-party exceptions (``OSError``, ``ssl``, anyio, wsproto) become
the project's errors; the original is kept as ``__cause__``."""

from __future__ import annotations

import os
import socket
import ssl

import anyio
import wsproto.utilities

from ._errors import ConnectionLostError, ProtocolViolationError, RelayError
from ._frames import ABNORMAL_CLOSURE

__all__ = ["translate_error"]


def translate_error(
    exc: BaseException, context: str, *, established: bool = True, host: str | None = None
) -> RelayError | None:
    """The project's error for a third-party exception, or ``None`` when it is not ours to
    translate (a bug, a cancellation: re-raise it unchanged). ``context`` prefixes the message;
    an ``established`` socket that drops gets close code 1006, a failed handshake none.
    ``host`` (never a secret: no userinfo) names the host a failed name lookup was for.

    Raise the result with ``raise err from (err.__cause__ or exc)``.
    """
    dropped = ABNORMAL_CLOSURE if established else None
    if isinstance(exc, RelayError):
        return exc
    if isinstance(exc, anyio.EndOfStream):
        return ConnectionLostError(f"{context}: the peer closed the connection", code=dropped)
    if isinstance(exc, anyio.ClosedResourceError):
        return ConnectionLostError(f"{context}: the websocket was closed locally")
    if isinstance(exc, anyio.BrokenResourceError | OSError):  # ssl.SSLError is an OSError
        return ConnectionLostError(f"{context}: {_os_reason(exc, host)}", code=dropped)
    if isinstance(exc, wsproto.utilities.RemoteProtocolError):
        violation = ProtocolViolationError(f"invalid WebSocket data from the peer: {exc}")
        violation.__cause__ = exc
        lost = ConnectionLostError(f"{context}: {violation.message}")
        lost.__cause__ = violation
        return lost
    if isinstance(exc, wsproto.utilities.LocalProtocolError):
        return ConnectionLostError(f"{context}: the websocket is closed ({exc})")
    return None


def _os_reason(exc: BaseException, host: str | None) -> str:
    """The most specific OS or TLS error text in ``exc``'s cause chain ("Connection refused")."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, socket.gaierror):
            # Its errno is an EAI_* code, which os.strerror reads as "Unknown error -2".
            name = "the host name" if host is None else f"host {host!r}"
            return f"could not resolve {name} ({seen.strerror or 'name lookup failed'})"
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS certificate verification failed: {seen.verify_message}"
        if isinstance(seen, ssl.SSLError):
            return f"TLS error: {getattr(seen, 'reason', None) or seen.strerror or seen}"
        if isinstance(seen, OSError) and seen.errno:
            return os.strerror(seen.errno)
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__
    return str(exc) or type(exc).__name__

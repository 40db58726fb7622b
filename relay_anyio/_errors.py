"""The adapter's public error hierarchy.

Every exception the client or the transport raises on purpose is a ``RelayError``; third-party
exceptions (``OSError``, anyio, ``ssl``, wsproto) are translated into these in one place
(``relay_anyio._translate.translate_error``) and kept as ``__cause__``.

Invariants:

* ``str(e)`` is one readable line built only from ``message`` and ``code`` (plus, for a
  failed dial, each leg's destination and end reason). Nothing here ever formats
  credentials, request params or ``RequestError.data``, so errors are safe to log.
* ``ProtocolViolationError`` raised by the transport means the socket is still usable;
  ``ConnectionLostError`` always means it is gone (a fatal violation is a
  ``ConnectionLostError`` whose ``__cause__`` is a ``ProtocolViolationError``).

==========================  ==================================================================
Error                       Raised when
==========================  ==================================================================
``ConfigurationError``      bad user options (also a ``ValueError``); fix the call
``AuthenticationError``     the server rejected the credentials
``ConnectionLostError``     connect failed, the socket closed or broke; ``code`` is the
                            WebSocket close code when there is one (1006 = no close frame)
``RequestError``            the server refused a request (``code``, ``message``, ``data``)
``CallGoneError``           ... with 404/410: the call no longer exists
``RequestTimeoutError``     ... no reply within ``request_timeout`` (also a ``TimeoutError``);
                            only that request failed, the socket is still up
``DialFailedError``         a dial ended unanswered (``legs``, ``reason``, ``source``)
``DialTimeoutError``        a dial's deadline passed (also a ``TimeoutError``)
``ConnectError``            a bridge (``Call.connect``) failed (``reason``, ``source``)
``ProtocolViolationError``  the server broke the protocol
==========================  ==================================================================
"""

from __future__ import annotations

from typing import Any

from relay_proto import ConnectStateChanged, DialFailed, DialFailureCause, DialTimedOut, Leg

__all__ = [
    "AuthenticationError",
    "CallGoneError",
    "ConfigurationError",
    "ConnectError",
    "ConnectionLostError",
    "DialFailedError",
    "DialTimeoutError",
    "ProtocolViolationError",
    "RelayError",
    "RequestError",
    "RequestTimeoutError",
    "dial_error",
    "request_error",
]


class RelayError(Exception):
    """Root of every error this package raises.

    ``message`` is a human-readable description; ``code`` a protocol code when one applies
    (a JSON-RPC / RELAY code, or a WebSocket close code for ``ConnectionLostError``).
    """

    message: str
    code: int | None

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        if self.code is None:
            return self.message
        return f"{self.message} (code {self.code})"


class ConfigurationError(RelayError, ValueError):
    """An option passed by the user is invalid (bad host, insecure URL, ...)."""


class AuthenticationError(RelayError):
    """The server rejected the credentials (``signalwire.connect`` failed)."""


class ConnectionLostError(RelayError):
    """The WebSocket is gone: connect failed, the peer closed it, or it broke.

    ``code`` is the WebSocket close code when known: the peer's code for a clean close,
    1006 when the connection dropped without a close frame, 1009 for an oversize message,
    1002/1007 for a framing violation (then ``__cause__`` is a ``ProtocolViolationError``).
    """


class ProtocolViolationError(RelayError):
    """The server broke the protocol (binary message, bad JSON, unknown reply, ...).

    Raised by the transport only when the socket is still usable; the caller may log it
    and keep reading.
    """


class RequestError(RelayError):
    """The server refused a request. ``data`` is the JSON-RPC ``error.data`` (never printed)."""

    data: Any
    method: str | None

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        data: Any = None,
        method: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.data = data
        self.method = method

    def __str__(self) -> str:
        text = super().__str__()
        return text if self.method is None else f"{self.method} failed: {text}"


class CallGoneError(RequestError):
    """The request named a call that no longer exists (404 / 410)."""


#: RELAY codes that mean "that call is gone".
CALL_GONE_CODES = frozenset({404, 410})


def request_error(
    message: str, *, code: int | None, data: Any = None, method: str | None = None
) -> RequestError:
    """Build the right ``RequestError`` subclass for a refused request."""
    cls = CallGoneError if code in CALL_GONE_CODES else RequestError
    return cls(message, code=code, data=data, method=method)


def _destination(device: Any) -> str:
    """The dialled address of a device object, without any other params (no secrets)."""
    if not isinstance(device, dict):
        return "?"
    params = device.get("params")
    if isinstance(params, dict):
        for key in ("to_number", "to"):
            value = params.get(key)
            if isinstance(value, str) and value:
                return value
    kind = device.get("type")
    return kind if isinstance(kind, str) and kind else "?"


def _describe_legs(legs: tuple[Leg, ...]) -> str:
    return ", ".join(
        f"{_destination(leg.device)}: {leg.end_reason or leg.state.value}" for leg in legs
    )


class DialFailedError(RelayError):
    """A dial ended without an answer.

    ``legs`` lists every leg seen, each with its end reason; ``reason`` / ``source`` are
    what the server's ``dial_state: failed`` event carried (``None`` when absent).
    """

    legs: tuple[Leg, ...]
    reason: str | None
    source: str | None
    tag: str | None

    def __init__(
        self,
        message: str = "dial failed",
        *,
        legs: tuple[Leg, ...] = (),
        reason: str | None = None,
        source: str | None = None,
        code: int | None = None,
        tag: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.legs = tuple(legs)
        self.reason = reason
        self.source = source
        self.tag = tag

    def __str__(self) -> str:
        text = super().__str__()
        details = [f"{k}={v}" for k, v in (("reason", self.reason), ("source", self.source)) if v]
        if details:
            text += f" ({', '.join(details)})"
        if self.legs:
            text += f"; legs: {_describe_legs(self.legs)}"
        return text


class DialTimeoutError(RelayError, TimeoutError):
    """A dial's deadline passed before any leg answered; every leg seen was ended."""

    legs: tuple[Leg, ...]
    tag: str | None

    def __init__(
        self,
        message: str = "dial timed out",
        *,
        legs: tuple[Leg, ...] = (),
        tag: str | None = None,
    ) -> None:
        super().__init__(message)
        self.legs = tuple(legs)
        self.tag = tag

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}; legs: {_describe_legs(self.legs)}" if self.legs else text


def dial_error(outcome: DialFailed | DialTimedOut, dial_timeout: float) -> RelayError:
    """The error ``dial()`` raises for a dial that produced no call."""
    if isinstance(outcome, DialTimedOut):
        return DialTimeoutError(
            f"no answer within {dial_timeout:g} s; every leg was hung up",
            legs=outcome.legs,
            tag=outcome.tag,
        )
    if outcome.cause is DialFailureCause.CONNECTION_LOST:
        return ConnectionLostError(outcome.message)
    return DialFailedError(
        "dial refused by the server: " + outcome.message
        if outcome.cause is DialFailureCause.REFUSED
        else "dial failed: no device answered",
        legs=outcome.legs,
        reason=outcome.reason,
        source=outcome.source,
        code=outcome.code,
        tag=outcome.tag,
    )


class RequestTimeoutError(RequestError, TimeoutError):
    """No reply within ``request_timeout``: only this request failed (the socket stays up,
    a late reply is dropped). The request may still take effect on the server."""


class ConnectError(RelayError):
    """A bridge failed: ``Call.connect()`` got ``failed`` (or ``disconnected`` before
    ``connected``). ``reason`` and ``source`` are the server's, when it gave them."""

    def __init__(
        self, message: str, *, reason: str | None = None, source: str | None = None
    ) -> None:
        super().__init__(message)
        self.reason = reason
        self.source = source

    @classmethod
    def of(cls, event: ConnectStateChanged) -> ConnectError:
        detail = ", ".join(
            f"{name} {value}"
            for name, value in (("reason", event.reason), ("source", event.source))
            if value
        )
        message = f"the bridge {event.state.value}" + (f" ({detail})" if detail else "")
        return cls(message, reason=event.reason, source=event.source)
